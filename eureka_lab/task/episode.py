"""The fitness contract: a task's fitness scores one finished :class:`Episode`, higher is
better; it never sees the reward code, and the model never sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Episode:
    observations: np.ndarray
    """Shape (T + 1, *obs_shape): the reset observation, then one per step."""
    actions: np.ndarray
    """Shape (T, *action_shape)."""
    rewards: np.ndarray
    """Shape (T,): the environment's own reward."""
    infos: dict[str, np.ndarray]
    """Numeric info keys present at every step, each of shape (T, ...)."""
    qpos: np.ndarray | None
    """Shape (T + 1, nq) for MuJoCo envs (reset state first), else None."""
    qvel: np.ndarray | None
    terminated: bool
    truncated: bool

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def env_return(self) -> float:
        return float(np.sum(self.rewards))


FitnessFn = Callable[[Episode], float]


def env_return(episode: Episode) -> float:
    """The fitness used when a task names none: the environment's own return."""
    return episode.env_return
