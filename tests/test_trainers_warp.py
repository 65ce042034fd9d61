"""The warp trainer on Warp's CPU device: the batched tasks equal Gymnasium step by step,
training records the same statistics, a numpy-only reward is sent back with the reason, and
a run's directory is the same as with the CPU trainers. Warp's kernel cache lives in
``~/.cache/eureka-lab/warp``, so only the first run of the suite compiles (tens of seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco_warp")
pytest.importorskip("array_api_compat")

import torch  # noqa: E402

from eureka_lab.backends.scripted import ScriptedBackend  # noqa: E402
from eureka_lab.batched import BATCHED  # noqa: E402
from eureka_lab.batched.warp import WarpBatch, init_warp, kernel_cache  # noqa: E402
from eureka_lab.loop.loop import Loop  # noqa: E402
from eureka_lab.report.results import load_run  # noqa: E402
from eureka_lab.reward.contract import visible_info_key  # noqa: E402
from eureka_lab.reward.loader import load_reward  # noqa: E402
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore  # noqa: E402
from eureka_lab.task.load import load_task
from eureka_lab.task.model import Task  # noqa: E402
from eureka_lab.trainers import Budget, make_trainer  # noqa: E402

from support.doubles import register  # noqa: E402
from support.mujoco_envs import ELEVEN, KWARGS, env_task  # noqa: E402
from support.warp_physics import EllipticAnt  # noqa: E402

register()
BATCHED.register(EllipticAnt.env_id, EllipticAnt)

TOL = 2e-3
"""Largest gap allowed after one step from the same state. Warp computes in float32 and
MuJoCo C in float64: the largest one-step gap measured was 7.5e-4 for HalfCheetah (a
velocity, through contacts) and 2.5e-6 for Hopper; a wrong observation, reward or dynamics
is off by far more. Trajectories are chaotic (float32 and float64 part within 30 steps), so
the Gymnasium states are copied over before every step, and a Warp world restarts in the
state its Gymnasium env restarted in."""

PGS_TOL = 1e-2
"""The humanoids' models ask for the PGS solver, which Warp lacks: Warp solves their
constraints with Newton, and after one step their contact forces part from Gymnasium's by up
to 0.6% (on the C simulator, Newton's part from PGS's likewise)."""
TOLERANCE = {"Humanoid-v5": PGS_TOL, "HumanoidStandup-v5": PGS_TOL}


def _compare(task, n: int, steps: int, tol: float = TOL) -> tuple[float, int, int]:
    """Step Warp's worlds and ``n`` Gymnasium envs with the same random actions, some
    beyond the bounds; return the largest gap in an observation (relative to 1 + its
    size) and how many episodes ended, by a fall and by the time limit."""
    warp = WarpBatch(task, n, "cpu")
    envs = [task.make_env() for _ in range(n)]
    starts = [env.reset(seed=i)[0] for i, env in enumerate(envs)]

    def gymnasium_state(draws, qpos, qvel):  # where Warp restarts its worlds
        state = [(e.unwrapped.data.qpos, e.unwrapped.data.qvel) for e in envs]
        return (torch.tensor(np.stack(s), dtype=torch.float32) for s in zip(*state, strict=True))

    def close(got, want, what: str) -> None:
        want = np.asarray(want, dtype=np.float64)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, tol, tol, err_msg=what)

    warp.definition.reset = gymnasium_state
    close(warp.reset(0), starts, "reset")
    rng = np.random.default_rng(1)
    low, high = warp.action_space.low, warp.action_space.high
    worst, terminated, truncated = 0.0, 0, 0
    for k in range(steps):
        warp.set_state(
            np.stack([e.unwrapped.data.qpos for e in envs]),
            np.stack([e.unwrapped.data.qvel for e in envs]),
        )
        warp.elapsed[:] = torch.tensor([e.get_wrapper_attr("_elapsed_steps") for e in envs])
        actions = rng.uniform(1.2 * low, 1.2 * high, (n, *low.shape)).astype(np.float32)
        out = [env.step(a) for env, a in zip(envs, actions, strict=True)]
        next_obs = [
            env.reset()[0] if o[2] or o[3] else o[0] for env, o in zip(envs, out, strict=True)
        ]
        step = warp.step(torch.as_tensor(actions))
        reached = np.stack([o[0] for o in out])
        close(step.reached, reached, f"reached@{k}")
        close(step.obs, next_obs, f"obs@{k}")
        close(step.reward, [o[1] for o in out], f"reward@{k}")
        np.testing.assert_array_equal(step.terminated.numpy(), [o[2] for o in out])
        np.testing.assert_array_equal(step.truncated.numpy(), [o[3] for o in out])
        assert set(warp.info) == set(out[0][4])
        for key, value in warp.info.items():
            close(value, [o[4][key] for o in out], f"{key}@{k}")
        assert set(step.info) == {key for key in out[0][4] if visible_info_key(key)}
        gap = np.abs(step.reached.numpy() - reached) / (1 + np.abs(reached))
        worst = max(worst, float(gap.max()))
        terminated += sum(o[2] for o in out)
        truncated += sum(o[3] for o in out)
    return worst, terminated, truncated


def test_half_cheetah_equals_gymnasium_step_by_step_through_the_time_limit():
    task = load_task("half_cheetah").model_copy(update={"max_episode_steps": 40})
    worst, terminated, truncated = _compare(task, n=3, steps=90)
    assert (terminated, truncated) == (0, 6) and worst < TOL


def test_hopper_equals_gymnasium_with_falls():
    worst, terminated, truncated = _compare(load_task("hopper"), n=3, steps=120)
    assert terminated >= 3 and worst < TOL


def test_hopper_without_termination_follows_the_task():
    task = load_task("hopper_backflip").model_copy(update={"max_episode_steps": 30})
    assert _compare(task, n=2, steps=65)[1:] == (0, 4)  # the time limit only


@pytest.mark.slow
def test_a_tasks_own_env_equals_its_definition_on_warp():
    """The README's custom env (``examples/tall_hopper/``), with the definition its task
    names: the same definition on Warp's worlds as in C."""
    example = Path(__file__).resolve().parent.parent / "examples" / "tall_hopper"
    task = load_task(str(example / "tall_hopper.yaml"))
    task = task.model_copy(update={"env_kwargs": {"min_height": 1.1}, "max_episode_steps": 40})
    worst, terminated, truncated = _compare(task, n=2, steps=90)
    assert terminated >= 2 and worst < TOL


def warp_task(env_id: str, kwargs: dict | None = None, max_steps: int | None = None) -> Task:
    """A task on ``env_id``; the Ant's with elliptic friction, which MuJoCo Warp computes
    as MuJoCo C does (``tests/support/warp_physics.py``)."""
    return env_task(EllipticAnt.env_id if env_id == "Ant-v5" else env_id, kwargs, max_steps)


def test_ant_equals_gymnasium_with_its_contact_forces():
    """Fields derived from the state (the torso's frame), recomputed where a world
    restarts, and the contact forces Gymnasium computes after a step (zero after a reset)."""
    task = warp_task("Ant-v5", {"healthy_z_range": (0.3, 0.9)}, max_steps=25)
    worst, terminated, truncated = _compare(task, n=3, steps=60)
    assert terminated + truncated >= 6 and worst < TOL


@pytest.mark.slow
def test_gymnasiums_own_ant_parts_from_mujoco_where_a_foot_lands():
    """Under the pyramidal friction cone, MuJoCo Warp's contact frames (other tangents than
    MuJoCo C's for a capsule on a plane) give other friction: after one step, velocities
    part by up to about 1, and a foot touches the floor in one and not in the other."""
    with pytest.raises(AssertionError, match="reached@"):
        _compare(env_task("Ant-v5"), n=3, steps=60)
    worst, _, _ = _compare(env_task("Ant-v5"), n=3, steps=60, tol=10.0)
    assert worst > 0.05


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(set(ELEVEN) - {"Ant-v5", "HalfCheetah-v5", "Hopper-v5"}))
def test_every_env_equals_gymnasium_step_by_step(env_id):
    """Compiles each model's kernels (tens of seconds each, cold)."""
    tol = TOLERANCE.get(env_id, TOL)
    worst, terminated, truncated = _compare(warp_task(env_id, max_steps=30), n=3, steps=70, tol=tol)
    assert terminated + truncated >= 6 and worst < tol


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ELEVEN)
def test_every_env_follows_its_keyword_arguments(env_id):
    task = warp_task(env_id, KWARGS[env_id], max_steps=20)
    _compare(task, n=2, steps=45, tol=TOLERANCE.get(env_id, TOL))


def test_resets_draw_gymnasium_noise_on_the_device():
    task = load_task("half_cheetah")
    warp = WarpBatch(task, 512, "cpu")
    obs = warp.reset(3)
    qpos, qvel = warp.qpos - warp.init_qpos, warp.qvel - warp.init_qvel
    assert float(qpos.abs().max()) <= 0.1 and abs(float(qvel.std()) - 0.1) < 0.01
    assert obs.shape == (512, 17) and obs.dtype == torch.float32
    again = WarpBatch(task, 512, "cpu").reset(3)
    torch.testing.assert_close(obs, again)  # seeded


@pytest.mark.parametrize(
    ("env_id", "target"), [("Reacher-v5", (-2, None)), ("Pusher-v5", (-4, -2))]
)
def test_targets_are_drawn_on_the_device_as_gymnasium_draws_them(env_id, target):
    """The rejection loops (Reacher's goal in a disc, Pusher's object away from its goal),
    on a torch generator: every restarting world gets an accepted value, from Gymnasium's
    distribution (its own draws' mean and spread)."""
    from eureka_lab.batched.warp import _WorldDraws, torch_numpy

    env = env_task(env_id).make_env()
    cls = BATCHED.get(env_id)
    definition = cls(env.unwrapped, cls.keyword_defaults(), torch_numpy("cpu"))
    n = 4000
    rows = torch.rand(n, generator=torch.Generator().manual_seed(0)) < 0.5
    draws = _WorldDraws(torch.Generator().manual_seed(1), rows, "cpu")
    start = torch.zeros(n, env.unwrapped.model.nq), torch.zeros(n, env.unwrapped.model.nv)
    qpos, qvel = definition.reset(draws, *start)
    drawn = qpos[rows, slice(*target)].numpy()
    assert np.all(qvel[:, target[0] :].numpy() == 0)
    gymnasium = []
    for seed in range(n // 2):
        env.reset(seed=seed)
        gymnasium.append(env.unwrapped.data.qpos[slice(*target)].copy())
    gymnasium = np.array(gymnasium)
    if env_id == "Reacher-v5":
        assert np.linalg.norm(drawn, axis=1).max() < 0.2
    else:
        assert np.linalg.norm(drawn, axis=1).min() > 0.17
    np.testing.assert_allclose(drawn.mean(0), gymnasium.mean(0), atol=0.01)
    np.testing.assert_allclose(drawn.std(0), gymnasium.std(0), rtol=0.1)


def _loader(code):
    return lambda namespace="numpy", device="cpu": load_reward(code, namespace, device)


def test_training_records_checkpoints_and_components():
    task = load_task("half_cheetah")
    trainer = make_trainer("warp", {"n_envs": 32, "n_steps": 16, "minibatch_size": 256})
    assert trainer.reward_namespace == "torch" and trainer.resources.gpus == 0.0
    seen = []
    code = task.reward_source(task.seed_rewards[0])
    out = trainer.train(
        task,
        _loader(code),
        Budget(2048, 0, 2),
        lambda stats, arrays, state=None: seen.append((stats, arrays)),
    )
    assert out.steps == 2048 and out.components == ["forward", "torque"]
    assert [s.step for s, _ in seen] == [1024, 2048]
    for stats, arrays in seen:
        assert set(stats.components) == {"forward", "torque"}
        assert all(a.dtype == np.float32 and np.all(np.isfinite(a)) for a in arrays.values())
    # The evaluator rebuilds the policy from the arrays, on Gymnasium, without Warp.
    act = trainer.policy(task, seen[-1][1])
    assert act(np.zeros((2, 17))).shape == (2, 6)


NUMPY_ONLY = """Forward speed, normalised by the observation size.

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    speed = next_obs[:, 8] / next_obs.size * next_obs.shape[0]
    return speed, {"speed": speed}
```
"""

FIXED = """Forward speed.

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    speed = np.asarray(info["x_velocity"], dtype=np.float64)
    return speed, {"speed": speed}
```
"""


def test_a_run_on_warp_repairs_a_numpy_only_reward_and_keeps_the_run_format(tmp_path):
    task = Task.model_validate(
        {
            **load_task("half_cheetah").model_dump(),
            "trainer": {"name": "warp", "n_envs": 16, "n_steps": 16, "minibatch_size": 256},
            "timesteps": 1024,
            "checkpoints": 2,
            "eval_episodes": 1,
            "max_episode_steps": 100,
        }
    )
    backend = ScriptedBackend(responses=[NUMPY_ONLY, FIXED])
    store = RunStore.create(tmp_path, "w", {"task": task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=1, executor="inline")
    loop = Loop(store, task, config, backend)
    loop.iteration(0, loop._opening(), None)

    broken, repaired = store.candidate("iter_00/cand_00"), store.candidate("iter_00/cand_00_r1")
    assert broken.status == "failed" and "not on the torch tensors" in broken.reason
    repair_prompt = backend.prompts[1].messages[-1].content
    assert "not on the torch tensors" in repair_prompt
    assert repaired.status == "valid"
    result = store.result(repaired.id)
    assert result.status == "trained" and result.fitness is not None
    run = load_run(store.root)
    (trained,) = [c for c in run.candidates if c.status == "trained"]
    assert [c.step for c in trained.checkpoints] == [512, 1024]
    assert all(c.fitness is not None for c in trained.checkpoints)
    assert trained.policy_path is not None and trained.components == ["speed"]


def test_a_group_trains_on_its_own_worlds_of_one_warp_batch():
    """Two rewards in one process on one batch of 2 x 16 worlds: each its own policy and
    statistics; a reward that breaks on tensors fails alone."""
    task = load_task("half_cheetah")
    trainer = make_trainer("warp", {"n_envs": 16, "n_steps": 16, "minibatch_size": 256, "group": 2})
    code = task.reward_source(task.seed_rewards[0])
    broken = code.replace(
        "def compute_reward(obs, action, next_obs, info):",
        "def compute_reward(obs, action, next_obs, info):\n    raise ValueError('not today')",
        1,
    )
    seen = [[], []]
    outcomes = trainer.train_group(
        task,
        [_loader(code), _loader(broken)],
        Budget(1024, 0, 2),
        [lambda s, a, state=None, i=i: seen[i].append((s, a)) for i in range(2)],
    )
    assert outcomes[0].steps == 1024 and outcomes[0].components == ["forward", "torque"]
    assert isinstance(outcomes[1], ValueError) and seen[1] == []
    assert [s.step for s, _ in seen[0]] == [512, 1024]
    assert trainer.last.buffer.obs.shape[1] == 16  # each PPO sees its own 16 worlds


def test_one_kernel_cache_in_warps_folder_for_this_version():
    """Warp is initialised once per process: its kernels go to the versioned folder under
    WARP_CACHE_PATH, never beside it (a second, cold cache)."""
    import warp as wp

    assert init_warp() is init_warp()
    WarpBatch(load_task("hopper"), 2, "cpu")
    root = Path(kernel_cache())
    assert wp.config.kernel_cache_dir == str(root / wp.config.version)
    assert not [p.name for p in root.iterdir() if p.name.startswith("wp_")]


@pytest.mark.parametrize(
    ("warp_gpus", "torch_cuda", "expected"),
    [(1, True, "cuda"), (1, False, "cpu"), (0, True, "cpu"), (0, False, "cpu")],
)
def test_the_gpu_is_used_only_where_warp_and_torch_both_see_one(
    monkeypatch, warp_gpus, torch_cuda, expected
):
    from eureka_lab.batched.warp import default_device

    wp = init_warp()
    monkeypatch.setattr(wp, "get_cuda_device_count", lambda: warp_gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_cuda)
    assert default_device() == expected
    trainer = make_trainer("warp", {})
    assert trainer.device_name == expected
    assert trainer.n_envs == (4096 if expected == "cuda" else 64)
    assert trainer.resources.gpus == (0.25 if expected == "cuda" else 0.0)
