"""The SB3 trainer: PPO on a vectorised env with a candidate's reward, checkpoint statistics,
and the hidden fitness measured on fixed-seed evaluation episodes.

Runs in a child process (see :mod:`eureka_lab.worker`); the orchestrator never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eureka_lab.contract import RewardFn
from eureka_lab.evaluation import Episode, env_return, rollout
from eureka_lab.task import Task

EVAL_SEED_BASE = 1_000_000
"""Evaluation episodes use seeds EVAL_SEED_BASE + i, the same for every candidate."""


@dataclass(frozen=True)
class TrainSpec:
    timesteps: int
    seed: int
    checkpoints: int
    eval_episodes: int


def score_episodes(task: Task, episodes: list[Episode]) -> dict[str, Any]:
    """Fitness (mean over episodes), success rate, env return and length of evaluations."""
    fn = task.fitness_fn or env_return
    scores = [float(fn(ep)) for ep in episodes]
    if not all(np.isfinite(scores)):
        raise ValueError(f"the task's fitness function returned a non-finite value: {scores}")
    out: dict[str, Any] = {
        "fitness": float(np.mean(scores)),
        "eval_env_return": float(np.mean([ep.env_return for ep in episodes])),
        "eval_length": float(np.mean([ep.length for ep in episodes])),
        "success_rate": None,
    }
    if task.success_threshold is not None:
        out["success_rate"] = float(np.mean([s >= task.success_threshold for s in scores]))
    return out


def train(
    task: Task,
    reward_fn: RewardFn | None,
    spec: TrainSpec,
    out_dir: Path,
    on_checkpoint: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any]:
    """Train PPO with ``reward_fn`` (None: the env's own reward); return the result record.

    At ``spec.checkpoints`` evenly spaced points records each component's mean/min/max, the
    training episodes' length and env return, and the fitness of the current (deterministic)
    policy on ``spec.eval_episodes`` fixed-seed episodes. The policy of the best checkpoint
    is saved to ``out_dir/policy.zip`` (with ``vecnormalize.pkl`` when normalising).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from eureka_lab.wrapper import make_reward_wrapper

    torch.set_num_threads(1)
    ppo = task.ppo
    venv = DummyVecEnv([task.make_env for _ in range(ppo.n_envs)])
    venv.seed(spec.seed)
    wrapped = make_reward_wrapper(venv, reward_fn)
    env: Any = wrapped
    normalizer = None
    if ppo.normalize_obs or ppo.normalize_reward:
        normalizer = VecNormalize(
            wrapped, norm_obs=ppo.normalize_obs, norm_reward=ppo.normalize_reward, gamma=ppo.gamma
        )
        env = normalizer
    model = PPO("MlpPolicy", env, seed=spec.seed, device="cpu", verbose=0, **ppo.sb3_kwargs())
    eval_envs = [task.make_env() for _ in range(spec.eval_episodes)]
    seeds = [EVAL_SEED_BASE + i for i in range(spec.eval_episodes)]
    interval = max(1, spec.timesteps // spec.checkpoints)
    records: list[dict[str, Any]] = []
    best: dict[str, Any] = {"fitness": -np.inf}
    started = time.monotonic()

    def act(obs: np.ndarray) -> np.ndarray:
        if normalizer is not None:
            obs = normalizer.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    def checkpoint(step: int) -> None:
        record: dict[str, Any] = {"step": step, "components": wrapped.components.snapshot()}
        record.update(wrapped.episodes.snapshot())
        record.update(score_episodes(task, rollout(eval_envs, act, seeds)))
        record["seconds"] = round(time.monotonic() - started, 2)
        records.append(record)
        if record["fitness"] > best["fitness"]:
            best.update(record)
            model.save(out_dir / "policy.zip")
            if normalizer is not None:
                normalizer.save(str(out_dir / "vecnormalize.pkl"))
        if on_checkpoint is not None:
            on_checkpoint(records)

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= (len(records) + 1) * interval:
                checkpoint(self.num_timesteps)
            return True

    model.learn(total_timesteps=spec.timesteps, callback=Checkpoints())
    if not records or records[-1]["step"] < model.num_timesteps:
        checkpoint(model.num_timesteps)
    seconds = time.monotonic() - started
    for e in eval_envs:
        e.close()
    env.close()
    final = records[-1]
    return {
        "status": "trained",
        "fitness": best["fitness"],
        "success_rate": best["success_rate"],
        "best_step": best["step"],
        "final_fitness": final["fitness"],
        "final_success_rate": final["success_rate"],
        "steps": int(model.num_timesteps),
        "seconds": round(seconds, 2),
        "steps_per_second": round(model.num_timesteps / seconds, 1),
        "components": sorted(final["components"]),
    }
