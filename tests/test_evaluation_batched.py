"""The evaluator on the batched form of a task's env (every episode a row of one batch in
C) gives the Episodes Gymnasium's rollout gives for the same policy and seeds: every
field to 1e-9, the ends, the behaviour summary and the scores; several policies in one
batch each get their own episodes; a task without a batched form keeps Gymnasium's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from eureka_lab.evaluation import evaluator
from eureka_lab.evaluation.batched import BatchedRollout, has_batched_form
from eureka_lab.evaluation.behaviour import layout, summarise
from eureka_lab.evaluation.evaluator import evaluate, rollout
from eureka_lab.task.episode import Episode
from eureka_lab.task.load import load_task, task_from_dict
from eureka_lab.task.model import Task
from eureka_lab.trainers import make_trainer

TOL = 1e-9


def policy_arrays(task: Task, seed: int) -> dict[str, np.ndarray]:
    """A PPO actor's parameters, random and large enough to act (not the near-zero
    actions of an untrained actor), with an observation normaliser."""
    env = task.make_env()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    rng = np.random.default_rng(seed)
    sizes = [obs_dim, 64, 64, act_dim]
    arrays = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        arrays[f"actor/net.{2 * i}.weight"] = rng.normal(0, 1.5 / np.sqrt(a), (b, a))
        arrays[f"actor/net.{2 * i}.bias"] = rng.normal(0, 0.1, b)
    arrays["actor/log_std"] = np.zeros(act_dim)
    arrays["obs_norm/mean"] = rng.normal(0, 0.1, obs_dim)
    arrays["obs_norm/var"] = rng.uniform(0.5, 2.0, obs_dim)
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def assert_same(got: Episode, want: Episode) -> None:
    assert (got.terminated, got.truncated, got.length) == (
        want.terminated,
        want.truncated,
        want.length,
    )
    for name in ("observations", "actions", "rewards", "qpos", "qvel"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=name)
    assert got.infos.keys() == want.infos.keys()
    for key, value in want.infos.items():
        assert got.infos[key].shape == value.shape, key
        np.testing.assert_allclose(got.infos[key], value, rtol=0, atol=TOL, err_msg=key)


def task_on(name: str, max_steps: int) -> Task:
    return load_task(name).model_copy(update={"max_episode_steps": max_steps})


@pytest.mark.parametrize(
    ("env_id", "steps"),
    [
        ("Hopper-v5", 300),
        ("Humanoid-v5", 60),
        pytest.param("HalfCheetah-v5", 120, marks=pytest.mark.slow),
        pytest.param("Ant-v5", 120, marks=pytest.mark.slow),
    ],
)
def test_batched_episodes_equal_gymnasiums_for_the_same_policies_and_seeds(env_id, steps):
    """Two policies in one batch, four seeds each: falls at different steps (Hopper, the
    humanoid), the time limit, contact forces and vector ``info`` keys (Ant, Humanoid)."""
    task = Task(name="t", env_id=env_id, description="-", timesteps=1, max_episode_steps=steps)
    trainer = make_trainer("ppo", {})
    acts = [trainer.policy(task, policy_arrays(task, k)) for k in (1, 2)]
    seeds = [5, 6, 7, 8]
    batched = BatchedRollout(task).episodes(acts, seeds)
    for act, got in zip(acts, batched, strict=True):
        envs = [task.make_env() for _ in seeds]
        want = rollout(envs, act, seeds)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
        where = layout(envs[0])
        space = envs[0].action_space
        assert summarise(got, layout(BatchedRollout(task)), None, space, steps) == summarise(
            want, where, None, space, steps
        )
    lengths = {ep.length for eps in batched for ep in eps}
    if env_id in ("Hopper-v5", "Humanoid-v5"):
        assert len(lengths) > 1  # episodes that end at different steps
    assert not np.array_equal(batched[0][0].actions, batched[1][0].actions)


def test_the_evaluator_scores_the_same_on_the_batched_path(tmp_path):
    """Choosing the checkpoint, scoring it on held-out episodes and summarising: the same
    records as on Gymnasium's envs."""
    task = task_on("hopper", 200)
    assert has_batched_form(task)
    trainer = make_trainer(task.trainer)
    policies = {
        100: policy_arrays(task, 1),
        200: policy_arrays(task, 2),
        300: policy_arrays(task, 3),
    }
    fast = evaluate(task, trainer, policies, 3)
    slow = evaluate(task, trainer, policies, 3, batched=False)
    assert [e.step for e in fast.checkpoints] == [100, 200, 300]
    assert fast.held_out is not None and fast.held_out.step == slow.held_out.step
    for a, b in zip(
        [*fast.checkpoints, fast.held_out], [*slow.checkpoints, slow.held_out], strict=True
    ):
        assert a.fitness == pytest.approx(b.fitness, abs=TOL)
        assert a.eval_env_return == pytest.approx(b.eval_env_return, abs=TOL)
        _close(a.behaviour.model_dump(), b.behaviour.model_dump())


def _close(a: Any, b: Any) -> None:
    """``a`` equals ``b`` with every real number within TOL (pytest.approx refuses nested
    records from pytest 9.2)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=TOL)
    else:
        assert a == b


def test_a_task_without_a_batched_form_is_rolled_out_on_gymnasium(monkeypatch):
    raw = {
        **load_task("pendulum").model_dump(),
        "trainer": {"name": "ppo"},
        "max_episode_steps": 20,
    }
    task = task_from_dict(raw)
    assert not has_batched_form(task)
    calls = []
    monkeypatch.setattr(evaluator, "rollout", lambda *a: calls.append(a) or rollout(*a))
    evaluated = evaluate(task, make_trainer(task.trainer), {10: policy_arrays(task, 0)}, 2)
    assert len(calls) == 2  # the choosing episodes and the held-out ones
    assert evaluated.held_out is not None and evaluated.held_out.eval_length == 20
