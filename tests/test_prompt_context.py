import ast
import re

import numpy as np
import pytest

from eureka_lab.core.errors import TaskError
from eureka_lab.prompt.context import EnvContext, build_context, context_for_env, env_source
from eureka_lab.task.envs import make_env
from eureka_lab.task.load import builtin_task_files, load_task

from support import custom_envs

# "reward" anywhere; "cost" as a word part (CartPole's physics keeps ``costheta``).
LEAK = re.compile(r"(?i)reward|(?<![a-z])costs?(?![a-z])")

ENVS = ["HalfCheetah-v5", "Hopper-v5", "Ant-v5", "MountainCar-v0", "Pendulum-v1", "CartPole-v1"]
OBS_SIZE = {
    "HalfCheetah-v5": 17,
    "Hopper-v5": 11,
    "Ant-v5": 105,
    "MountainCar-v0": 2,
    "Pendulum-v1": 3,
    "CartPole-v1": 4,
}


def identifiers(tree: ast.AST) -> list[str]:
    """Every name, attribute, parameter, keyword, function name and string in ``tree``."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif isinstance(n, ast.Attribute):
            out.append(n.attr)
        elif isinstance(n, ast.arg) or (isinstance(n, ast.keyword) and n.arg):
            out.append(n.arg)
        elif isinstance(n, ast.FunctionDef | ast.ClassDef):
            out.append(n.name)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            out.append(n.value)
    return out


def docstrings(tree: ast.AST) -> list[str]:
    nodes = [
        n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
    ]
    return [d for n in nodes if (d := ast.get_docstring(n, clean=False))]


@pytest.fixture(scope="module", params=ENVS)
def ctx(request) -> EnvContext:
    env = make_env(request.param)
    try:
        return context_for_env(env)
    finally:
        env.close()


def test_source_has_env_code_without_reward(ctx):
    tree = ast.parse(ctx.source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes and classes[-1].endswith("Env")
    methods = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert "step" in methods
    assert "_get_obs" in methods or "self.state" in ctx.source
    leaks = [i for i in identifiers(tree) if LEAK.search(i)]
    assert not leaks, leaks
    assert not docstrings(tree)
    # The step still returns five things, the reward replaced by `...`.
    step = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "step")
    ret = [n for n in ast.walk(step) if isinstance(n, ast.Return)][-1]
    assert isinstance(ret.value, ast.Tuple) and len(ret.value.elts) == 5
    assert isinstance(ret.value.elts[1], ast.Constant) and ret.value.elts[1].value is Ellipsis


def test_observation_has_one_line_per_entry(ctx):
    lines = [ln for ln in ctx.observation.splitlines() if ln.startswith("obs[")]
    assert len(lines) == OBS_SIZE[ctx.env_id]
    assert [ln.split("]")[0] for ln in lines] == [f"obs[{i}" for i in range(len(lines))]


def test_info_keys_and_prompt(ctx):
    assert not [k for k in ctx.info_keys if LEAK.search(k)]
    prompt = ctx.to_prompt()
    assert f"```python\n{ctx.source.rstrip()}\n```" in prompt
    assert "## Observation" in prompt and "## Action" in prompt and "## Info keys" in prompt
    assert not [
        ln for ln in prompt.splitlines() if re.search(r"(?i)reward", ln) and "removed" not in ln
    ]
    if ctx.env_id in ("HalfCheetah-v5", "Hopper-v5", "Ant-v5"):
        assert "x_velocity" in ctx.info_keys and "x_position" in ctx.info_keys


def test_mujoco_observation_names():
    env = make_env("HalfCheetah-v5")
    ctx = context_for_env(env)
    lines = [ln for ln in ctx.observation.splitlines() if ln.startswith("obs[")]
    assert lines[0] == "obs[0]: qpos[1] rootz (slide joint)"
    assert lines[8].startswith("obs[8]: qvel[0] rootx")
    assert "action[0]: actuator bthigh" in ctx.action


def test_ant_contact_forces_are_unnamed():
    ctx = context_for_env(make_env("Ant-v5"))
    lines = [ln for ln in ctx.observation.splitlines() if ln.startswith("obs[")]
    assert lines[0].startswith("obs[0]: qpos[2] root z (free joint)")
    assert lines[13].startswith("obs[13]: qvel[0] root vx")
    assert lines[27] == "obs[27]"


def test_half_cheetah_source_details():
    ctx = context_for_env(make_env("HalfCheetah-v5"))
    assert "return (observation, ..., False, False, info)" in ctx.source
    assert "info = {'x_position': x_position_after, 'x_velocity': x_velocity}" in ctx.source
    assert "reset_noise_scale: float=0.1" in ctx.source


def test_pendulum_keeps_module_helper():
    ctx = context_for_env(make_env("Pendulum-v1"))
    assert "def angle_normalize(x):" in ctx.source
    assert "return (self._get_obs(), ..., False, False, {})" in ctx.source
    assert "cos(theta)" in ctx.observation  # from the docstring's observation table


def test_given_names_and_wrong_count():
    task = load_task("cartpole")
    ctx = build_context(task)
    assert "obs[2]: pole_angle in [-0.4189, 0.4189]" in ctx.observation
    env = make_env("CartPole-v1")
    with pytest.raises(TaskError, match=r"3 observation_names.*4 entries"):
        context_for_env(env, observation_names=("a", "b", "c"))


def test_custom_env_hides_reward_parts():
    ctx = context_for_env(make_env("support.custom_envs:ReachEnv"))
    assert ctx.env_id == "support.custom_envs:ReachEnv"
    tree = ast.parse(ctx.source)
    leaks = [i for i in identifiers(tree) if LEAK.search(i) or "bonus" in i.lower()]
    assert not leaks, leaks
    assert not docstrings(tree)
    assert "def goal_distance(" in ctx.source  # module helper it uses
    assert "shaped_reward" not in ctx.source
    assert ctx.source.count("class _GoalObservation") == 1  # base class from the same module
    assert ctx.source.count("def _get_obs(self)") == 1
    assert "terms" not in ctx.source  # computed from the reward method: removed too
    assert "def __init__(self, size: float=2.0):" in ctx.source
    assert "return (self._get_obs(), ..., reached, False, info)" in ctx.source
    assert "info = {'distance': distance}" in ctx.source
    assert ctx.info_keys == ("distance",)
    assert "# " not in ctx.source  # comments are gone


class FasterReach(custom_envs.ReachEnv):
    """A user's subclass in another module: inherited observation and reset code is shown."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(2 * action)
        return obs, reward * 2, terminated, truncated, info


def test_inherited_methods_are_shown_as_stubs():
    source = env_source(FasterReach)
    tree = ast.parse(source)
    stubs = {n.name: [m.name for m in n.body] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert stubs["_GoalObservation"] == ["_get_obs"]
    assert stubs["ReachEnv"] == ["reset"]
    assert "obs, _, terminated, truncated, info = super().step(2 * action)" in source
    assert "return (obs, ..., terminated, truncated, info)" in source
    assert not [i for i in identifiers(tree) if LEAK.search(i)]


def test_env_source_of_class_directly():
    from support.custom_envs import ReachEnv

    assert env_source(ReachEnv) == context_for_env(make_env("support.custom_envs:ReachEnv")).source


@pytest.mark.parametrize("name", sorted(builtin_task_files()))
def test_every_builtin_task_context_hides_the_reward(name):
    task = load_task(name)
    context = build_context(task)
    tree = ast.parse(context.source)
    leaks = [i for i in identifiers(tree) if LEAK.search(i)]
    assert not leaks, leaks
    assert not docstrings(tree)
    env = task.make_env()
    size = int(np.prod(env.observation_space.shape))
    env.close()
    lines = [ln for ln in context.observation.splitlines() if ln.startswith("obs[")]
    assert len(lines) == size
    assert not [k for k in context.info_keys if LEAK.search(k)]
    if task.observation_names:
        assert all(n in context.observation for n in task.observation_names)


def test_env_kwargs_are_shown_but_reward_weights_are_not(tmp_path):
    from eureka_lab.task.load import task_from_dict

    task = task_from_dict(
        {
            "name": "t",
            "env_id": "HalfCheetah-v5",
            "env_kwargs": {"forward_reward_weight": 3.0, "reset_noise_scale": 0.2},
            "max_episode_steps": 300,
            "description": "run",
            "timesteps": 10,
        }
    )
    prompt = build_context(task).to_prompt()
    assert "Made with `reset_noise_scale=0.2, max_episode_steps=300`" in prompt
    assert "forward_reward_weight" not in prompt
