"""The batched-environment protocol, and its generic form over Gymnasium envs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from eureka_lab.reward.contract import batch_info

Array = TypeVar("Array")
"""numpy arrays, or the torch tensors of a tensor env (MuJoCo Warp)."""


@dataclass(frozen=True)
class Step(Generic[Array]):
    """One step of every env. Envs whose episode ended are reset automatically."""

    obs: Array
    """(n, *obs_shape): what the policy sees next (the reset observation where done)."""
    reached: Array
    """(n, *obs_shape): the observation each env reached (the terminal one where done):
    the reward's ``next_obs``."""
    reward: Array
    """(n,): the environment's own reward."""
    terminated: Array
    """(n,) bool."""
    truncated: Array
    """(n,) bool: the time limit."""
    info: dict[str, Array]
    """The reward's ``info``: visible numeric keys, (n, ...) each."""


class BatchedEnv(Protocol):
    """``num_envs`` copies of one task's environment, stepped together."""

    num_envs: int
    observation_space: Any
    """The space of one env's observation (gymnasium.spaces)."""
    action_space: Any
    """The space of one env's action."""
    tensors: bool
    """Whether it speaks torch tensors on its device (else numpy arrays)."""

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env (env i with seed ``seed + i``); (n, *obs_shape)."""
        ...

    def step(self, actions: np.ndarray) -> Step: ...

    def close(self) -> None: ...


class GymBatch:
    """Any Gymnasium env in the batched form: ``num_envs`` instances stepped in turn."""

    tensors = False

    def __init__(self, make_env: Any, num_envs: int) -> None:
        self.envs = [make_env() for _ in range(num_envs)]
        self.num_envs = num_envs
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space

    def reset(self, seed: int) -> np.ndarray:
        return np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])

    def step(self, actions: np.ndarray) -> Step:
        obs, reached, rewards, terms, truncs, infos = [], [], [], [], [], []
        for env, a in zip(self.envs, actions, strict=True):
            o, r, term, trunc, info = env.step(a)
            reached.append(o)
            obs.append(env.reset()[0] if term or trunc else o)
            rewards.append(r)
            terms.append(term)
            truncs.append(trunc)
            infos.append(info)
        return Step(
            obs=np.stack(obs),
            reached=np.stack(reached),
            reward=np.asarray(rewards, dtype=np.float64),
            terminated=np.asarray(terms, dtype=bool),
            truncated=np.asarray(truncs, dtype=bool),
            info=batch_info(infos),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()


def time_limit(env: Any) -> float:
    """The steps after which ``env`` (as :meth:`Task.make_env` wraps it) truncates an
    episode: its ``TimeLimit``'s, or infinity where it has none."""
    try:
        return int(env.get_wrapper_attr("_max_episode_steps"))
    except AttributeError:
        return math.inf
