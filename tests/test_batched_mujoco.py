"""The batched MuJoCo tasks equal Gymnasium's envs step by step on the same actions."""

from __future__ import annotations

import numpy as np
import pytest

from eureka_lab.batched import GymBatch, make_batched
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.task.load import load_task


def _compare(task, n: int, steps: int, seed: int = 3) -> int:
    """Step both forms with the same random actions; return how many episodes ended."""
    fast, slow = make_batched(task, n), GymBatch(task.make_env, n)
    assert isinstance(fast, MujocoBatch)
    assert fast.observation_space == slow.observation_space
    assert fast.action_space == slow.action_space
    np.testing.assert_array_equal(fast.reset(seed), slow.reset(seed))
    rng = np.random.default_rng(seed)
    ended = 0
    low, high = fast.action_space.low, fast.action_space.high
    for k in range(steps):
        # Beyond the bounds now and then, so control clamping is compared too.
        actions = rng.uniform(1.2 * low, 1.2 * high, (n, *fast.action_space.shape))
        a, b = fast.step(actions.astype(np.float32)), slow.step(actions.astype(np.float32))
        for field in ("obs", "reached", "reward", "terminated", "truncated"):
            np.testing.assert_allclose(
                getattr(a, field), getattr(b, field), rtol=0, atol=1e-9, err_msg=f"{field}@{k}"
            )
        assert a.info.keys() == b.info.keys()
        for key in a.info:
            np.testing.assert_allclose(a.info[key], b.info[key], rtol=0, atol=1e-9, err_msg=key)
        ended += int(np.sum(a.terminated | a.truncated))
    fast.close()
    slow.close()
    return ended


def test_half_cheetah_equals_gymnasium_across_the_time_limit() -> None:
    task = load_task("half_cheetah").model_copy(update={"max_episode_steps": 60})
    assert _compare(task, n=3, steps=130) == 6  # two time limits each, resets compared


def test_hopper_equals_gymnasium_with_falls_and_resets() -> None:
    ended = _compare(load_task("hopper"), n=4, steps=200)
    assert ended >= 8  # random torques topple it: terminations and noisy resets compared


def test_hopper_without_termination_follows_the_task_kwargs() -> None:
    task = load_task("hopper_backflip").model_copy(update={"max_episode_steps": 80})
    assert task.env_kwargs == {"terminate_when_unhealthy": False}
    assert _compare(task, n=2, steps=170) == 4  # only the time limit ends episodes


def test_changed_weights_are_applied() -> None:
    task = load_task("half_cheetah").model_copy(
        update={"env_kwargs": {"ctrl_cost_weight": 0.5, "reset_noise_scale": 0.3}}
    )
    _compare(task, n=2, steps=20)


def test_unknown_kwargs_fall_back_to_gymnasium() -> None:
    task = load_task("half_cheetah").model_copy(update={"env_kwargs": {"xml_file": "x.xml"}})
    assert not MujocoBatch.supports(task)
    other = load_task("pendulum")
    assert isinstance(make_batched(other, 2), GymBatch)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_results(threads: int) -> None:
    task = load_task("hopper")
    one, many = make_batched(task, 8, 1), make_batched(task, 8, threads)
    one.reset(0), many.reset(0)
    actions = np.random.default_rng(0).uniform(-1, 1, (50, 8, 3))
    for a in actions:
        np.testing.assert_array_equal(one.step(a).obs, many.step(a).obs)
