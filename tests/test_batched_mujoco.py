"""The batched MuJoCo envs, stepped in C, equal Gymnasium's envs step by step on the same
actions: observations (the reset ones too), rewards, ends and every ``info`` key, to 1e-9."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from eureka_lab.batched import BATCHED, GymBatch, make_batched
from eureka_lab.batched.make import _fallback_notice
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.batched.mujoco_envs import DEFINITIONS
from eureka_lab.core.errors import TaskError
from eureka_lab.reward.contract import batch_info
from eureka_lab.task.load import load_task, task_from_dict
from eureka_lab.task.model import Task

from support.mujoco_envs import (
    CONTACT_FORCES,
    ELEVEN,
    FALLING,
    KWARGS,
    MORE_KWARGS,
    UNHEALTHY_ENDS,
    env_task,
)


@dataclass
class Ends:
    terminated: int
    truncated: int
    reached: np.ndarray
    """(steps, n, *obs_shape)."""


def compare(task: Task, n: int, steps: int, seed: int = 3) -> Ends:
    """Step the C batch and ``n`` Gymnasium envs (env i seeded ``seed + i``, restarted when
    done, as :class:`GymBatch` does) with the same random actions, some beyond the bounds;
    everything equal to 1e-9."""
    fast = make_batched(task, n)
    assert isinstance(fast, MujocoBatch)
    envs = [task.make_env() for _ in range(n)]
    assert fast.observation_space == envs[0].observation_space
    assert fast.action_space == envs[0].action_space
    expected = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    np.testing.assert_allclose(fast.reset(seed), expected, rtol=0, atol=1e-9, err_msg="reset")
    rng = np.random.default_rng(seed)
    low, high = fast.action_space.low, fast.action_space.high
    terminated = truncated = 0
    seen = []
    for k in range(steps):
        actions = rng.uniform(1.2 * low, 1.2 * high, (n, *low.shape)).astype(np.float32)
        step = fast.step(actions)
        outs = [env.step(a) for env, a in zip(envs, actions, strict=True)]
        next_obs = [
            env.reset()[0] if o[2] or o[3] else o[0] for env, o in zip(envs, outs, strict=True)
        ]
        infos = [o[4] for o in outs]
        for name, got, want in [
            ("reached", step.reached, [o[0] for o in outs]),
            ("obs", step.obs, next_obs),
            ("reward", step.reward, [o[1] for o in outs]),
            ("terminated", step.terminated, [o[2] for o in outs]),
            ("truncated", step.truncated, [o[3] for o in outs]),
            *((f"info {key!r}", fast.info[key], [i[key] for i in infos]) for key in infos[0]),
        ]:
            np.testing.assert_allclose(got, np.asarray(want, float), 0, 1e-9, err_msg=f"{name}@{k}")
        assert set(fast.info) == set(infos[0])
        assert step.info.keys() == batch_info(infos).keys()  # what GymBatch passes on
        terminated += int(step.terminated.sum())
        truncated += int(step.truncated.sum())
        seen.append(step.reached)
    fast.close()
    return Ends(terminated, truncated, np.stack(seen))


def test_the_registry_is_built_from_the_list_of_definitions() -> None:
    assert [d.env_id for d in DEFINITIONS] == ELEVEN
    assert all(BATCHED.get(d.env_id) is d for d in DEFINITIONS)


@pytest.mark.parametrize("env_id", ELEVEN)
def test_every_env_equals_gymnasium_through_time_limits_and_falls(env_id: str) -> None:
    ends = compare(env_task(env_id, max_steps=40), n=3, steps=90)
    assert ends.terminated + ends.truncated >= 6  # restarts compared too
    assert ends.terminated >= (3 if env_id in FALLING else 0)
    if env_id in CONTACT_FORCES:  # the contact forces compared are not all zero
        assert np.abs(ends.reached[..., -CONTACT_FORCES[env_id] :]).max() > 0.1


@pytest.mark.parametrize("env_id", ELEVEN)
def test_keyword_arguments_change_observations_rewards_and_ends(env_id: str) -> None:
    ends = compare(env_task(env_id, KWARGS[env_id], max_steps=30), n=2, steps=70)
    assert ends.terminated >= (1 if env_id in FALLING | UNHEALTHY_ENDS else 0)


def test_a_task_without_termination_follows_its_kwargs() -> None:
    task = load_task("hopper_backflip").model_copy(update={"max_episode_steps": 80})
    assert task.env_kwargs == {"terminate_when_unhealthy": False}
    ends = compare(task, n=2, steps=170)
    assert (ends.terminated, ends.truncated) == (0, 4)  # only the time limit ends episodes


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tall_hopper" / "tall_hopper.yaml"
"""The README's custom env: a Hopper with its own end and reward, and its definition."""


def test_a_tasks_own_env_with_the_definition_it_names() -> None:
    """The definition beside the task file that the task names (``batched:``), against
    the env it names, with a keyword argument of the env's own and one of its base's."""
    task = load_task(str(EXAMPLE))
    assert task.batched == "tall_hopper_batched:TallHopper" and task.env_kwargs
    task = task.model_copy(
        update={
            "env_kwargs": {"min_height": 1.1, "reset_noise_scale": 0.05},
            "max_episode_steps": 60,
        }
    )
    ends = compare(task, n=2, steps=150)
    assert ends.terminated >= 2 and ends.truncated + ends.terminated >= 4
    refused = task.model_copy(
        update={"env_kwargs": {"exclude_current_positions_from_observation": False}}
    )
    with pytest.warns(UserWarning, match="exclude_current_positions_from_observation.*GymBatch"):
        assert isinstance(make_batched(refused, 2), GymBatch)


def test_a_batched_field_that_names_no_definition_is_refused() -> None:
    with pytest.raises(TaskError, match="field 'batched': .*TallHopperEnv.*not a subclass"):
        make_batched(
            load_task(str(EXAMPLE)).model_copy(update={"batched": "tall_hopper_env:TallHopperEnv"}),
            2,
        )
    with pytest.raises(TaskError, match="field 'batched'.*has no attribute 'Tall'"):
        task_from_dict(
            {**load_task(str(EXAMPLE)).model_dump(), "batched": "tall_hopper_batched:Tall"}
        )
    with pytest.raises(TaskError, match="field 'batched'.*is not a class"):
        task_from_dict({**load_task(str(EXAMPLE)).model_dump(), "batched": "tall_hopper:fitness"})


@pytest.mark.slow
@pytest.mark.parametrize("env_id", sorted(set(ELEVEN) - FALLING | UNHEALTHY_ENDS))
def test_every_env_through_its_own_time_limit(env_id: str) -> None:
    """Whole episodes, to the env's own time limit (the robots that fall told not to end:
    the pendulums, which always end when they fall, never get there)."""
    kwargs = {"terminate_when_unhealthy": False} if env_id in UNHEALTHY_ENDS else {}
    limit = int(env_task(env_id).make_env().spec.max_episode_steps)
    ends = compare(env_task(env_id, kwargs), n=2, steps=limit + 20)
    assert ends.truncated == 2


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ELEVEN)
def test_every_keyword_argument_that_changes_a_result(env_id: str) -> None:
    compare(env_task(env_id, MORE_KWARGS[env_id], max_steps=100), n=2, steps=250)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"xml_file": "hopper.xml"}, "xml_file"),
        ({"render_mode": "rgb_array"}, "render_mode"),
        ({"width": 64, "frame_skip": 2}, "width"),
    ],
)
def test_what_a_definition_does_not_implement_falls_back_to_gymnasium_once(kwargs, named):
    _fallback_notice.cache_clear()
    task = env_task("Hopper-v5", kwargs)
    assert not MujocoBatch.supports(task)
    with pytest.warns(UserWarning, match=f"Hopper-v5: .*{named}.*GymBatch"):
        assert isinstance(make_batched(task, 2), GymBatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(make_batched(task, 2), GymBatch)  # said once per process


def test_an_env_without_a_definition_is_stepped_by_gymnasium_as_the_log_says(caplog) -> None:
    _fallback_notice.cache_clear()
    caplog.set_level(logging.INFO, logger="eureka_lab.batched.make")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normal path for every env but MuJoCo's: no warning
        assert isinstance(make_batched(load_task("pendulum"), 2), GymBatch)
        assert isinstance(make_batched(load_task("pendulum"), 2), GymBatch)
    assert [r.getMessage() for r in caplog.records] == [
        "Pendulum-v1 has no batched definition; it runs on Gymnasium, one env after another "
        "(GymBatch)"
    ]


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_results(threads: int) -> None:
    task = env_task("Ant-v5")  # contact forces read from each simulation's own data
    one, many = make_batched(task, 8, 1), make_batched(task, 8, threads)
    one.reset(0), many.reset(0)
    actions = np.random.default_rng(0).uniform(-1, 1, (50, 8, 8))
    for a in actions:
        np.testing.assert_array_equal(one.step(a).obs, many.step(a).obs)
