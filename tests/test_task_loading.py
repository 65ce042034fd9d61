"""Loading tasks (built-in name, YAML file, env id), the errors that name the field and a
near match, and reward_source's standalone programs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from eureka_lab.core.errors import TaskError
from eureka_lab.core.files import data_dir
from eureka_lab.reward.loader import load_reward
from eureka_lab.task.load import builtin_task_files, load_task, task_from_dict
from eureka_lab.task.model import ENV_REWARD
from eureka_lab.task.refs import reward_source
from eureka_lab.trainers import make_trainer

ENVS_DIR = Path(__file__).resolve().parent.parent / "envs"
BASE = {"name": "t", "env_id": "CartPole-v1", "description": "Balance.", "timesteps": 1000}


def test_builtins_are_the_yaml_files_of_envs():
    assert data_dir("envs").resolve() == ENVS_DIR
    assert set(builtin_task_files()) == {p.stem for p in ENVS_DIR.glob("*.yaml")}
    assert {"cartpole", "mountain_car", "pendulum"} <= set(builtin_task_files())


@pytest.mark.parametrize("name", ["cartpole", "mountain_car"])
def test_load_builtin_by_name(name):
    task = load_task(name)
    raw = yaml.safe_load((ENVS_DIR / f"{name}.yaml").read_text())
    assert task.name == name and task.env_id == raw["env_id"]
    assert task.source_dir == ENVS_DIR
    assert callable(task.fitness_fn)


def test_builtin_overrides_apply_and_are_validated():
    task = load_task("cartpole", description="Balance it longer.", timesteps=None)
    assert task.description == "Balance it longer." and task.timesteps == 50000
    with pytest.raises(TaskError, match="timesteps"):
        load_task("cartpole", timesteps=0)


def test_load_task_file_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(BASE))
    task = load_task(str(path))
    assert task.name == "t" and task.source_dir == tmp_path.resolve()


def test_env_id_with_description_uses_env_return():
    task = load_task("CartPole-v1", description="Balance the pole.")
    assert task.env_id == "CartPole-v1" and task.name == "CartPole-v1"
    assert task.description == "Balance the pole."
    assert task.fitness == ENV_REWARD and task.fitness_fn is None
    assert task.timesteps > 0


def test_env_id_with_fitness_resolves_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "scoring.py").write_text("def fitness(ep):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    task = load_task("CartPole-v1", description="Balance.", fitness="scoring:fitness")
    assert task.source_dir == tmp_path and task.fitness_fn(None) == 1.0


@pytest.mark.parametrize("description", [None, ""])
def test_env_id_without_description(description):
    with pytest.raises(TaskError, match='add --description "what to achieve"'):
        load_task("CartPole-v1", description=description)


def test_unknown_reference_suggests_near_match():
    with pytest.raises(TaskError, match="Did you mean 'cartpole'"):
        load_task("cartpol")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"timestep": 5}, r"unknown key 'timestep'\. Did you mean 'timesteps'\?"),
        (
            {"trainer": {"name": "sb3", "n_step": 5}},
            r"field 'trainer': unknown sb3 setting 'n_step'\. Did you mean 'n_steps'\?",
        ),
        ({"trainer": {"name": "sb4"}}, r"Unknown trainer 'sb4'\. Did you mean 'sb3'\?"),
        (
            {"ppo": {"n_envs": 2}, "trainer": {"name": "sb3"}},
            r"'ppo' is the old name of the SB3 settings: move them under 'trainer'",
        ),
        ({"colour": "red"}, r"unknown key 'colour'\. Remove it\."),
        ({"description": None}, r"missing field 'description' \(The behaviour"),
        ({"timesteps": None}, r"missing field 'timesteps'"),
        ({"timesteps": 0}, r"field 'timesteps': .*greater than or equal to 1 \(got 0\)"),
        ({"name": "a b"}, r"field 'name': .*without spaces"),
        ({"env_id": "CartPol-v1"}, r"'CartPol-v1'\. Did you mean 'CartPole-v1'"),
        ({"env_id": "support.custom_envs:NoSuchEnv"}, r"has no attribute 'NoSuchEnv'"),
    ],
)
def test_bad_task_dict_names_the_problem(change, match):
    raw = {**BASE, **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(TaskError, match=match):
        task_from_dict(raw, origin="mine.yaml")


@pytest.mark.parametrize(
    "field, ref, match",
    [
        ("fitness", "cartpol:fitness", r"field 'fitness': Cannot import 'cartpol'.*'cartpole'"),
        ("fitness", "cartpole:fitnes", r"field 'fitness': .*no attribute 'fitnes'.*'fitness'"),
        ("fitness", "cartpole", r"field 'fitness': Bad reference 'cartpole'"),
        ("fitness", "cartpole:ANGLE_LIMIT", r"field 'fitness': .* is not a function"),
        ("human_reward", "cartpole:uprite_reward", r"'human_reward'.*'upright_reward'"),
        ("sparse_reward", "cartpole:sparse", r"'sparse_reward'.*'sparse_reward'"),
        ("seed_rewards", ["cartpole:upright_reward", "cartpole:stilness"], r"'seed_rewards\[1\]'"),
    ],
)
def test_bad_module_ref_names_field_and_near_match(field, ref, match):
    raw = {**BASE, field: ref, "source_dir": str(ENVS_DIR)}
    with pytest.raises(TaskError, match=match):
        task_from_dict(raw)


MODULE = '''\
"""A task module with helpers, constants and things the reward does not use."""

import math

import numpy as np

SCALE = 2.0
OFFSET: float = 0.5
LOW, HIGH = -1.0, 1.0
UNUSED = 99


def _clip(x):
    return np.clip(x, LOW, HIGH)


def _height(o):
    return SCALE * _clip(np.sin(3.0 * o[:, 0])) + OFFSET


def unrelated(obs, action, next_obs, info):
    return UNUSED


def my_reward(obs, action, next_obs, info):
    height = _height(next_obs)
    speed = math.pi * np.abs(next_obs[:, 1])
    components = {"height": height, "speed": speed}
    return height + speed, components
'''


def test_reward_source_is_standalone_compute_reward(tmp_path):
    (tmp_path / "helpers_mod.py").write_text(MODULE)
    source = reward_source("helpers_mod:my_reward", tmp_path)
    assert "def compute_reward(obs, action, next_obs, info)" in source
    assert "my_reward" not in source and "unrelated" not in source and "UNUSED" not in source
    namespace: dict = {}
    exec(compile(source, "<seed>", "exec"), namespace)  # a standalone program
    fn = namespace["compute_reward"]
    next_obs = np.array([[-0.5, 0.01], [0.4, -0.02], [0.1, 0.0]])
    total, comps = fn(None, None, next_obs, {})
    expected = 2.0 * np.clip(np.sin(3.0 * next_obs[:, 0]), -1, 1) + 0.5
    np.testing.assert_allclose(comps["height"], expected)
    np.testing.assert_allclose(total, expected + np.pi * np.abs(next_obs[:, 1]))
    load_reward(source)  # also passes the sandbox policy


def test_reward_source_of_builtin_seed_reward():
    task = load_task("mountain_car")
    source = task.reward_source("mountain_car:energy_reward")
    assert "GRAVITY = 0.0025" in source and "def _energy(o)" in source
    assert "def fitness" not in source and "sparse_reward" not in source
    fn = load_reward(source)
    obs = np.array([[-0.5, 0.0], [-0.4, 0.01]])
    next_obs = np.array([[-0.49, 0.01], [0.55, 0.02]])
    total, comps = fn(obs, np.array([2, 2]), next_obs, {})
    assert comps["goal"].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(total, comps["energy_gain"] + comps["goal"])
    assert task.reward_source(ENV_REWARD) is None


def test_an_old_ppo_block_is_read_as_the_sb3_trainer():
    task = task_from_dict({**BASE, "ppo": {"n_envs": 3, "normalize_obs": True}})
    assert task.trainer.name == "sb3"
    assert make_trainer(task.trainer).n_envs == 3
    assert make_trainer(task.trainer).settings.normalize_obs is True
    assert "ppo" not in task.model_dump()
