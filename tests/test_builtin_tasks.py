"""The built-in tasks load, roll out, and their reward functions honour the contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eureka_lab.core.errors import TaskError
from eureka_lab.evaluation.evaluator import rollout
from eureka_lab.reward.contract import batch_info, check_reward_output, visible_info_key
from eureka_lab.task.episode import Episode
from eureka_lab.task.load import builtin_task_files, load_task
from eureka_lab.task.model import ENV_REWARD

EXPECTED = {
    "mountain_car",
    "mountain_car_fuel",
    "pendulum",
    "cartpole",
    "half_cheetah",
    "hopper",
    "half_cheetah_backward",
    "hopper_backflip",
    "walker2d",
    "ant",
    "humanoid",
}
BUILTINS = sorted(builtin_task_files())


def test_builtin_task_files_lists_every_task():
    files = builtin_task_files()
    assert set(files) >= EXPECTED
    for name, path in files.items():
        assert path.suffix == ".yaml" and path.stem == name


@pytest.mark.parametrize("name", BUILTINS)
def test_task_loads(name):
    task = load_task(name)
    assert task.name == name
    assert task.description.strip()
    assert task.fitness != ENV_REWARD
    assert task.timesteps > 0
    assert callable(task.fitness_fn)
    if task.observation_names is not None:
        env = task.make_env()
        assert len(task.observation_names) == env.observation_space.shape[0]
        env.close()


def _random_actor(env, seed=0):
    space = env.action_space
    space.seed(seed)

    def act(obs_batch):
        return np.stack([space.sample() for _ in range(len(obs_batch))])

    return act


@pytest.mark.parametrize("name", BUILTINS)
def test_random_rollout_has_finite_fitness(name):
    task = load_task(name)
    env = task.make_env()
    (episode,) = rollout([env], _random_actor(env), seeds=[0])
    assert isinstance(episode, Episode)
    value = task.fitness_fn(episode)
    assert isinstance(value, float)
    assert math.isfinite(value)
    env.close()


def _transitions(task, n_envs=3, steps=5, seed=0):
    """A batch of real transitions (obs, action, next_obs, info) from ``n_envs`` envs."""
    envs = [task.make_env() for _ in range(n_envs)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    for e in envs:
        e.action_space.seed(seed)
    batches = []
    for _ in range(steps):
        actions = np.stack([e.action_space.sample() for e in envs])
        nexts, infos = [], []
        for e, a in zip(envs, actions, strict=True):
            o, _, term, trunc, info = e.step(a)
            nexts.append(o)
            infos.append(info)
            if term or trunc:
                e.reset()
        next_obs = np.stack(nexts)
        batches.append((obs, actions, next_obs, batch_info(infos)))
        obs = next_obs
    for e in envs:
        e.close()
    return batches


def _reward_refs(task):
    refs = [task.human_reward, task.sparse_reward, *task.seed_rewards]
    return [r for r in refs if r != ENV_REWARD]


CASES = [(n, r) for n in BUILTINS for r in _reward_refs(load_task(n))]


@pytest.mark.parametrize(("name", "ref"), CASES)
def test_reward_source_honours_contract(name, ref):
    task = load_task(name)
    source = task.reward_source(ref)
    assert source is not None and "def compute_reward(" in source
    for line in source.splitlines():
        if line.startswith(("import ", "from ")):
            assert line.split()[1].split(".")[0] in ("numpy", "math"), line
    namespace: dict = {}
    exec(compile(source, f"<{ref}>", "exec"), namespace)
    fn = namespace["compute_reward"]
    for obs, action, next_obs, info in _transitions(task):
        assert all(visible_info_key(k) for k in info)
        total, components = check_reward_output(fn(obs, action, next_obs, info), n_envs=3)
        assert total.shape == (3,)
        assert components


def test_seed_rewards_are_in_term_form():
    """Seeds build a dict literal of weight * expr terms, then sum them."""
    import ast

    for name in BUILTINS:
        task = load_task(name)
        for ref in task.seed_rewards:
            tree = ast.parse(task.reward_source(ref))
            fn = next(
                n
                for n in tree.body
                if isinstance(n, ast.FunctionDef) and n.name == "compute_reward"
            )
            dicts = [
                n.value
                for n in fn.body
                if isinstance(n, ast.Assign)
                and isinstance(n.targets[0], ast.Name)
                and n.targets[0].id == "components"
                and isinstance(n.value, ast.Dict)
            ]
            assert dicts, f"{ref}: no components = {{...}} literal"
            for value in dicts[0].values:
                assert isinstance(value, ast.BinOp) and isinstance(value.op, ast.Mult), ref
                weight = value.left
                if isinstance(weight, ast.UnaryOp):
                    weight = weight.operand
                assert isinstance(weight, ast.Constant), f"{ref}: term without a numeric weight"


# --------------------------------------------------------------------------- task-specific


def test_mountain_car_fitness_rewards_reaching_the_flag_sooner():
    task = load_task("mountain_car")
    env = task.make_env()

    def push_with_velocity(obs_batch):
        return np.where(obs_batch[:, 1] >= 0, 2, 0)

    (ep,) = rollout([env], push_with_velocity, seeds=[0])
    assert ep.terminated
    assert task.fitness_fn(ep) == 1.0 + (200 - ep.length) / 200
    assert task.fitness_fn(ep) >= task.success_threshold
    (ep,) = rollout([env], lambda o: np.ones(len(o), dtype=np.int64), seeds=[0])
    assert not ep.terminated and task.fitness_fn(ep) == 0.0


def test_the_quick_starts_first_tries_charge_for_every_push():
    """mountain_car_fuel: the human reward is the first seed, and every seed's ``fuel``
    term costs the same for a push left or right and nothing for no push."""
    task = load_task("mountain_car_fuel")
    assert task.human_reward == task.seed_rewards[0]
    obs = np.tile([[-0.5, 0.0]], (3, 1))
    for ref in task.seed_rewards:
        namespace: dict = {}
        exec(compile(task.reward_source(ref) or "", f"<{ref}>", "exec"), namespace)
        _, parts = namespace["compute_reward"](obs, np.array([0, 1, 2]), obs, {})
        fuel = np.asarray(parts["fuel"])
        assert fuel[0] == fuel[2] < 0 and fuel[1] == 0, ref


def test_hopper_backflip_sign_convention():
    """Negative torso pitch (obs[1] == qpos[2]) tips the top of the torso towards -x."""
    task = load_task("hopper_backflip")
    env = task.make_env()
    env.reset(seed=0)
    sim = env.unwrapped
    torso = sim.model.body("torso").id
    for angle in (0.5, -0.5):
        qpos = sim.data.qpos.copy()
        qpos[2] = angle
        sim.set_state(qpos, np.zeros_like(sim.data.qvel))
        top = sim.data.xpos[torso] + sim.data.xmat[torso].reshape(3, 3) @ np.array([0, 0, 0.2])
        assert np.sign(top[0] - sim.data.xpos[torso][0]) == np.sign(angle)
        assert sim._get_obs()[1] == pytest.approx(angle)
    qvel = np.zeros_like(sim.data.qvel)
    qvel[2] = -1.0
    sim.set_state(sim.data.qpos.copy(), qvel)
    assert sim._get_obs()[7] == pytest.approx(-1.0)
    env.close()


def test_hopper_backflip_fitness_counts_backward_turns():
    task = load_task("hopper_backflip")
    qpos = np.zeros((4, 6))
    qpos[:, 2] = [0.0, -np.pi, -2.5 * np.pi, -2.0 * np.pi]
    ep = Episode(
        observations=np.zeros((4, 11)),
        actions=np.zeros((3, 3)),
        rewards=np.zeros(3),
        infos={},
        qpos=qpos,
        qvel=np.zeros((4, 6)),
        terminated=False,
        truncated=True,
    )
    assert task.fitness_fn(ep) == pytest.approx(1.25)
    assert task.success_threshold == 1.0


@pytest.mark.parametrize(
    ("name", "entries"),
    [
        ("walker2d", {"torso_z": ("qpos", 1), "torso_pitch": ("qpos", 2),
                      "left_foot_angle": ("qpos", 8), "torso_x_velocity": ("qvel", 0),
                      "left_foot_velocity": ("qvel", 8)}),
        ("ant", {"torso_z": ("qpos", 2), "torso_quat_w": ("qpos", 3),
                 "ankle_4_angle": ("qpos", 14), "torso_x_velocity": ("qvel", 0),
                 "ankle_4_velocity": ("qvel", 13)}),
        ("humanoid", {"torso_z": ("qpos", 2), "torso_quat_x": ("qpos", 4),
                      "abdomen_z_angle": ("qpos", 7), "left_elbow_angle": ("qpos", 23),
                      "torso_x_velocity": ("qvel", 0), "left_elbow_velocity": ("qvel", 22)}),
    ],
)  # fmt: skip
def test_the_new_mujoco_tasks_name_their_observation_and_train_batched(name, entries):
    """Each named entry is the simulator's state it names (velocities within their clip),
    the env has a batched form, and the task names the ppo trainer and a public score."""
    from eureka_lab.batched.registry import definition_for

    task = load_task(name)
    assert definition_for(task) is not None and task.trainer.name == "ppo"
    assert task.fitness_description and task.sparse_reward != ENV_REWARD
    assert len(task.seed_rewards) >= 2
    env = task.make_env()
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    data = env.unwrapped.data
    for entry, (field, index) in entries.items():
        got = obs[task.observation_names.index(entry)]
        want = getattr(data, field)[index]
        assert got == pytest.approx(np.clip(want, -10, 10) if name == "walker2d" else want), entry
    env.close()


# --------------------------------------------------------------------------- bad task files

GOOD = """\
name: tmp_task
env_id: CartPole-v1
description: Balance the pole.
timesteps: 1000
"""


def _write(tmp_path, text):
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return str(path)


def test_good_tmp_task_loads(tmp_path):
    task = load_task(_write(tmp_path, GOOD))
    assert task.name == "tmp_task" and task.fitness == ENV_REWARD


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(TaskError, match="timestep"):
        load_task(_write(tmp_path, GOOD + "timestep: 5\n"))
    with pytest.raises(TaskError, match="n_env"):
        load_task(_write(tmp_path, GOOD + "trainer:\n  name: sb3\n  n_env: 4\n"))


def test_missing_field_is_named(tmp_path):
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith("description"))
    with pytest.raises(TaskError, match="description"):
        load_task(_write(tmp_path, text + "\n"))


def test_unknown_env_id_is_named(tmp_path):
    with pytest.raises(TaskError, match="CartPol-v9"):
        load_task(_write(tmp_path, GOOD.replace("CartPole-v1", "CartPol-v9")))
