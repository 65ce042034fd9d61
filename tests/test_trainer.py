"""train(): a tiny PPO budget, checkpoint records, the saved policy, fixed-seed fitness."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from eureka_lab import trainer
from eureka_lab.evaluation import Episode
from eureka_lab.task import task_from_dict
from eureka_lab.trainer import EVAL_SEED_BASE, TrainSpec, score_episodes, train

TIMESTEPS = 512
CHECKPOINTS = 2
EVAL_EPISODES = 2
PPO = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 2}


def _task(env_id="Pendulum-v1", **extra):
    raw = {
        "name": "tiny",
        "env_id": env_id,
        "description": "tiny",
        "timesteps": TIMESTEPS,
        "eval_episodes": EVAL_EPISODES,
        "checkpoints": CHECKPOINTS,
        "max_episode_steps": 50,
        "ppo": dict(PPO),
    }
    ppo_extra = extra.pop("ppo", {})
    raw.update(extra)
    raw["ppo"].update(ppo_extra)
    return task_from_dict(raw)


def upright_reward(obs, action, next_obs, info):
    up = next_obs[:, 0].astype(np.float64)
    spin = -0.1 * np.abs(next_obs[:, 2])
    return up + spin, {"upright": up, "spin": spin}


SPEC = TrainSpec(timesteps=TIMESTEPS, seed=3, checkpoints=CHECKPOINTS, eval_episodes=EVAL_EPISODES)


def _train(tmp_path, task, reward_fn, name="out", spec=SPEC):
    out = tmp_path / name
    out.mkdir()
    seen = []
    result = train(task, reward_fn, spec, out, on_checkpoint=lambda recs: seen.append(list(recs)))
    return out, result, seen


@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory):
    task = _task(ppo={"normalize_obs": True})
    return _train(tmp_path_factory.mktemp("norm"), task, upright_reward)


def test_train_writes_policy_and_result(normalized_run):
    out, result, seen = normalized_run
    assert (out / "policy.zip").is_file()
    assert result["status"] == "trained"
    assert result["steps"] == TIMESTEPS
    assert result["components"] == ["spin", "upright"]
    records = seen[-1]
    fitnesses = [r["fitness"] for r in records]
    assert result["fitness"] == max(fitnesses)
    assert result["best_step"] == records[int(np.argmax(fitnesses))]["step"]
    assert result["final_fitness"] == records[-1]["fitness"]
    assert result["success_rate"] is None  # the task has no success threshold
    assert math.isfinite(result["fitness"]) and result["steps_per_second"] > 0


def test_checkpoint_records(normalized_run):
    _, _, seen = normalized_run
    assert [len(s) for s in seen] == list(range(1, CHECKPOINTS + 1))  # called at each one
    records = seen[-1]
    interval = TIMESTEPS // CHECKPOINTS
    assert [r["step"] for r in records] == [interval * (i + 1) for i in range(CHECKPOINTS)]
    for r in records:
        assert set(r["components"]) == {"upright", "spin"}
        for stats in r["components"].values():
            assert set(stats) == {"mean", "min", "max"}
            assert stats["min"] <= stats["mean"] <= stats["max"]
        assert r["episode_length"] == 50.0
        assert r["env_return"] < 0  # Pendulum's own reward is a cost
        assert math.isfinite(r["fitness"]) and r["eval_length"] == 50.0
        assert r["fitness"] == r["eval_env_return"]  # fitness 'env': the env's own return


def test_normalize_obs_saves_vecnormalize(normalized_run, tmp_path):
    out, _, _ = normalized_run
    assert (out / "vecnormalize.pkl").is_file()
    plain, _, _ = _train(tmp_path, _task(), upright_reward)
    assert (plain / "policy.zip").is_file()
    assert not (plain / "vecnormalize.pkl").exists()


def test_saved_policy_loads(normalized_run):
    from stable_baselines3 import PPO as SB3PPO

    out, _, _ = normalized_run
    model = SB3PPO.load(out / "policy.zip", device="cpu")
    action, _ = model.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert np.shape(action) == (1,)


def _strip_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_same_seed_gives_identical_records(normalized_run, tmp_path):
    _, result, seen = normalized_run
    task = _task(ppo={"normalize_obs": True})
    _, again, seen_again = _train(tmp_path, task, upright_reward)
    assert _strip_time(seen_again[-1]) == _strip_time(seen[-1])
    assert again["fitness"] == result["fitness"]


def test_fitness_uses_fixed_eval_seeds(tmp_path, monkeypatch):
    seeds_used = []
    real_rollout = trainer.rollout

    def spy(envs, act, seeds):
        seeds_used.append(list(seeds))
        return real_rollout(envs, act, seeds)

    monkeypatch.setattr(trainer, "rollout", spy)
    _train(tmp_path, _task(), None, spec=SPEC)
    _train(tmp_path, _task(), upright_reward, name="other", spec=replace(SPEC, seed=7))
    expected = [EVAL_SEED_BASE + i for i in range(EVAL_EPISODES)]
    assert seeds_used == [expected] * (2 * CHECKPOINTS)


@pytest.mark.parametrize("threshold, rate", [(-1e9, 1.0), (1e9, 0.0)])
def test_success_rate_from_threshold(tmp_path, threshold, rate):
    task = _task("CartPole-v1", success_threshold=threshold)
    _, result, seen = _train(tmp_path, task, None)
    assert result["success_rate"] == rate
    assert all(r["success_rate"] == rate for r in seen[-1])
    assert seen[-1][0]["components"] == {"env_reward": {"mean": 1.0, "min": 1.0, "max": 1.0}}


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
    task = SimpleNamespace(fitness_fn=lambda ep: ep.length * 1.0, success_threshold=3)
    scores = score_episodes(task, [_episode([1, 1]), _episode([0, 0, 0, 0])])
    assert scores == {
        "fitness": 3.0,
        "eval_env_return": 1.0,
        "eval_length": 3.0,
        "success_rate": 0.5,
    }


def test_score_episodes_rejects_non_finite_fitness():
    task = SimpleNamespace(fitness_fn=lambda ep: float("nan"), success_threshold=None)
    with pytest.raises(ValueError, match="non-finite"):
        score_episodes(task, [_episode([1.0])])
