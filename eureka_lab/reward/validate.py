"""Validation: the reward on real batched transitions before any training is paid for."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from eureka_lab.reward.applied import RewardComputer
from eureka_lab.reward.contract import batch_info
from eureka_lab.task.model import Task


def validate(
    task: Task,
    load: Callable[..., Any],
    n_envs: int = 4,
    steps: int = 32,
    seed: int = 0,
    on_torch: bool = False,
) -> dict:
    """Run the reward on real batched transitions: shapes, finite values, components sum.
    ``on_torch``: also on the same transitions as torch tensors, through the numpy the
    reward gets there (``load(namespace="torch")``), with the same result to float32
    precision; for trainers that run the reward on tensors."""

    started = time.monotonic()
    envs = [task.make_env() for _ in range(n_envs)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    for i, env in enumerate(envs):
        env.action_space.seed(seed + i)
    compute = RewardComputer(load())
    on_tensors = None
    if on_torch:
        from eureka_lab.reward.applied import TensorCheck

        on_tensors = TensorCheck(load(namespace="torch"))
    names: list[str] = []
    for _ in range(steps):
        actions = np.stack([np.asarray(env.action_space.sample()) for env in envs])
        nexts, rewards, infos, resets = [], [], [], []
        for env, a in zip(envs, actions, strict=True):
            o, r, term, trunc, info = env.step(a)
            nexts.append(o)
            rewards.append(r)
            infos.append(info)
            resets.append(env.reset()[0] if term or trunc else o)
        env_rewards = np.asarray(rewards, float)
        total, comps = compute(obs, actions, np.stack(nexts), infos, env_rewards)
        if on_tensors is not None:
            on_tensors(obs, actions, np.stack(nexts), batch_info(infos), env_rewards, total)
        names = sorted(comps)
        obs = np.stack(resets)
    for env in envs:
        env.close()
    return {
        "ok": True,
        "components": names,
        "transitions": n_envs * steps,
        "seconds": round(time.monotonic() - started, 3),
    }
