"""The SB3 trainer and the evaluator: a tiny PPO budget, checkpoint reports with the policy
as plain arrays, the policy rebuilt from them, fixed-seed fitness measured apart."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from eureka_lab.evaluation import evaluator as evaluation
from eureka_lab.evaluation.evaluator import (
    EVAL_SEED_BASE,
    HELD_OUT_SEED_BASE,
    choose,
    evaluate,
    score_episodes,
)
from eureka_lab.runs.records import Evaluation
from eureka_lab.task.episode import Episode
from eureka_lab.task.load import task_from_dict
from eureka_lab.trainers import Budget, make_trainer
from eureka_lab.trainers.sb3 import OBS_MEAN, SB3Settings, SB3Trainer

TIMESTEPS = 512
CHECKPOINTS = 2
EVAL_EPISODES = 2
SB3 = {"name": "sb3", "n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2}


def _task(env_id="Pendulum-v1", trainer=None, **extra):
    raw = {
        "name": "tiny",
        "env_id": env_id,
        "description": "tiny",
        "timesteps": TIMESTEPS,
        "eval_episodes": EVAL_EPISODES,
        "checkpoints": CHECKPOINTS,
        "max_episode_steps": 50,
        "trainer": {**SB3, **(trainer or {})},
        **extra,
    }
    return task_from_dict(raw)


def upright_reward(obs, action, next_obs, info):
    up = next_obs[:, 0].astype(np.float64)
    spin = -0.1 * np.abs(next_obs[:, 2])
    return up + spin, {"upright": up, "spin": spin}


BUDGET = Budget(timesteps=TIMESTEPS, seed=3, checkpoints=CHECKPOINTS)


def _train(task, reward_fn, budget=BUDGET):
    reports, loads = [], []

    def load():
        loads.append(len(reports))
        return reward_fn

    result = make_trainer(task.trainer).train(
        task, load, budget, lambda stats, arrays: reports.append((stats, arrays))
    )
    return result, reports, loads


def test_the_task_trainer_block_builds_the_sb3_trainer():
    task = _task(trainer={"normalize_obs": True})
    trainer = make_trainer(task.trainer)
    assert isinstance(trainer, SB3Trainer)
    settings = SB3Settings(n_envs=2, n_steps=64, batch_size=64, n_epochs=2, normalize_obs=True)
    assert trainer.settings == settings
    assert trainer.n_envs == 2 and trainer.resources.memory_bytes == 8 * 1024**3
    old = {"name": "old", "env_id": "Pendulum-v1", "description": "old", "timesteps": 512}
    old["ppo"] = {"n_envs": 3}  # the old name of the block
    assert make_trainer(task_from_dict(old).trainer).settings == SB3Settings(n_envs=3)


@pytest.fixture(scope="module")
def normalized_run():
    task = _task(trainer={"normalize_obs": True})
    return task, *_train(task, upright_reward)


def test_train_reports_each_checkpoint(normalized_run):
    _, result, reports, loads = normalized_run
    assert loads == [0]  # the reward is loaded once, before any checkpoint
    steps = [stats.step for stats, _ in reports]
    assert steps == [256, 512] and result.steps == 512
    assert result.components == ["spin", "upright"]
    stats = reports[-1][0]
    assert set(stats.components) == {"spin", "upright"}
    assert stats.components["upright"].min <= stats.components["upright"].mean
    assert [s.episodes for s, _ in reports] == [4, 6]  # 50-step episodes of 2 envs
    assert stats.episode_length == 50.0


def test_a_budget_sb3_overshoots_still_gives_its_checkpoints():
    """SB3 finishes its last rollout past the budget (500 steps: 512 with rollouts of 128; a
    checkpoint every 250):
    the end of training is the last checkpoint, not one at 500 and another at 512, so
    progress reads 2/2 checkpoints, never 3/2."""
    budget = Budget(timesteps=500, seed=3, checkpoints=CHECKPOINTS)
    result, reports, _ = _train(_task(), upright_reward, budget)
    assert [stats.step for stats, _ in reports] == [250, 512] and result.steps == 512


def test_training_never_scores_itself(normalized_run):
    _, result, reports, _ = normalized_run
    assert "fitness" not in type(reports[0][0]).model_fields
    assert "fitness" not in type(result).model_fields


def test_policy_arrays_are_plain_float32_with_the_normaliser(normalized_run):
    _, _, reports, _ = normalized_run
    arrays = reports[-1][1]
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays.values())
    assert "obs_norm/mean" in arrays and arrays["obs_norm/mean"].shape == (3,)
    assert any(k.startswith("policy/") for k in arrays)


def test_the_policy_rebuilt_from_arrays_acts_like_the_trained_one(normalized_run):
    """The evaluator's policy (from arrays) against SB3's own predict on the same state."""
    import torch
    from stable_baselines3 import PPO

    task, _, reports, _ = normalized_run
    arrays = reports[-1][1]
    trainer = make_trainer(task.trainer)
    act = trainer.policy(task, arrays)
    env = task.make_env()
    model = PPO(
        "MlpPolicy",
        env,
        device="cpu",
        policy_kwargs={"net_arch": list(trainer.settings.net_arch), "log_std_init": 0.0},
    )
    state = {k[len("policy/") :]: torch.from_numpy(v) for k, v in arrays.items() if "policy/" in k}
    model.policy.load_state_dict(state)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    normed = np.clip(
        (obs - arrays["obs_norm/mean"]) / np.sqrt(arrays["obs_norm/var"] + 1e-8), -10, 10
    )
    expected = model.predict(normed, deterministic=True)[0]
    np.testing.assert_allclose(act(obs), expected, rtol=1e-5, atol=1e-6)


def test_same_seed_gives_identical_reports(normalized_run):
    task, result, reports, _ = normalized_run
    again, reports_again, _ = _train(task, upright_reward)
    for (s1, a1), (s2, a2) in zip(reports, reports_again, strict=True):
        assert s1.model_dump(exclude={"seconds"}) == s2.model_dump(exclude={"seconds"})
        assert a1.keys() == a2.keys()
        assert all(np.array_equal(a1[k], a2[k]) for k in a1)
    assert again.steps == result.steps


def test_the_evaluator_chooses_on_fixed_seeds_and_scores_on_held_out_ones(
    normalized_run, monkeypatch
):
    """Every checkpoint on the same choosing episodes; the chosen one again on held-out
    episodes, seeded apart, which chose nothing."""
    seeds_used = []
    real = evaluation.rollout

    def spy(envs, act, seeds):
        seeds_used.append(list(seeds))
        return real(envs, act, seeds)

    monkeypatch.setattr(evaluation, "rollout", spy)
    task, _, reports, _ = normalized_run
    policies = {stats.step: arrays for stats, arrays in reports}
    evaluated = evaluate(task, make_trainer(task.trainer), policies, EVAL_EPISODES)
    evals = evaluated.checkpoints
    assert [e.step for e in evals] == [256, 512]
    choosing = [EVAL_SEED_BASE + i for i in range(EVAL_EPISODES)]
    held_out = [HELD_OUT_SEED_BASE + i for i in range(EVAL_EPISODES)]
    assert seeds_used == [choosing] * CHECKPOINTS + [held_out]
    assert not set(choosing) & set(held_out)
    assert evaluated.held_out is not None
    assert evaluated.held_out.step == choose(evals).step
    assert evaluated.held_out.eval_episodes == EVAL_EPISODES
    assert (
        evaluate(task, make_trainer(task.trainer), policies, EVAL_EPISODES) == evaluated
    )  # repeatable


@pytest.mark.parametrize("threshold, rate", [(-1e9, 1.0), (1e9, 0.0)])
def test_success_rate_from_threshold(threshold, rate):
    task = _task("CartPole-v1", success_threshold=threshold)
    _, reports, _ = _train(task, None)
    assert reports[-1][0].components["env_reward"].model_dump() == {
        "mean": 1.0,
        "min": 1.0,
        "max": 1.0,
    }
    assert OBS_MEAN not in reports[-1][1]  # no normaliser, no normaliser arrays
    trainer = SB3Trainer(SB3Settings(**{k: v for k, v in SB3.items() if k != "name"}))
    evaluated = evaluate(task, trainer, {s.step: a for s, a in reports}, 2)
    evals = evaluated.checkpoints
    assert [e.step for e in evals] == [s.step for s, _ in reports]
    assert all(e.success_rate == rate for e in [*evals, evaluated.held_out])


def _episode(rewards):
    rewards = np.asarray(rewards, dtype=np.float64)
    return Episode(
        observations=np.zeros((len(rewards) + 1, 1)),
        actions=np.zeros((len(rewards), 1)),
        rewards=rewards,
        infos={},
        qpos=None,
        qvel=None,
        terminated=True,
        truncated=False,
    )


def test_score_episodes_with_fitness_fn():
    task = SimpleNamespace(
        fitness_fn=lambda ep: ep.length * 1.0, success_threshold=3, has_fitness=True
    )
    scores = score_episodes(task, [_episode([1, 1]), _episode([0, 0, 0, 0])], step=7)
    assert scores == Evaluation(
        step=7, fitness=3.0, eval_env_return=1.0, eval_length=3.0, success_rate=0.5, eval_episodes=2
    )


def test_score_episodes_rejects_non_finite_fitness():
    task = SimpleNamespace(
        fitness_fn=lambda ep: float("nan"), success_threshold=None, has_fitness=True
    )
    with pytest.raises(ValueError, match="non-finite"):
        score_episodes(task, [_episode([1.0])], step=0)
