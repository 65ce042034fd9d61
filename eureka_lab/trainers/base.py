"""The trainer protocol.

A trainer runs in two places:

- :meth:`Trainer.train` runs in the candidate's sandboxed process. It builds its
  environments and model, then calls ``load_reward()``: that confines the process (no
  files, no network, no new processes) and returns the candidate's reward function (None
  for the environment's own reward). At each checkpoint it calls ``report(stats, policy)``
  with the training statistics and the policy's parameters as plain float arrays. It never
  measures fitness.
- :meth:`Trainer.policy` runs in the evaluator, which never loads reward code: it rebuilds
  the policy from those arrays (after the orchestrator checked them) for rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel

from eureka_lab.contract import RewardFn
from eureka_lab.records import CheckpointStats, TrainingReport

Arrays = dict[str, np.ndarray]
Report = Callable[[CheckpointStats, Arrays], None]
Act = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Budget:
    """How long to train, and how often to report."""

    timesteps: int
    seed: int
    checkpoints: int


@dataclass(frozen=True)
class Resources:
    """What one training process needs; the executor sets limits and placement from it."""

    threads: int = 1
    """Torch and BLAS threads."""
    device: str = "cpu"
    memory_bytes: int | None = 8 * 1024**3
    """Address-space limit. torch, numpy and mujoco reserve a few GB of address space;
    CUDA reserves far more than it uses, so GPU trainers say None."""
    gpus: float = 0.0


class Trainer(Protocol):
    """Trains one reward; built from its validated ``Settings``."""

    Settings: ClassVar[type[BaseModel]]
    """The task's trainer block (minus ``name``) is validated by this model."""

    def __init__(self, settings: Any) -> None: ...

    @property
    def n_envs(self) -> int:
        """Parallel environments the reward is called on (the first axis of its inputs)."""
        ...

    @property
    def resources(self) -> Resources: ...

    def describe(self) -> dict[str, Any]:
        """The algorithm and main settings, for the prompt: ``{"algorithm": ...,
        "settings": {name: value}}``."""
        ...

    def train(
        self,
        task: Any,
        load_reward: Callable[[], RewardFn | None],
        budget: Budget,
        report: Report,
    ) -> TrainingReport: ...

    def policy(self, task: Any, arrays: Arrays) -> Act:
        """A deterministic policy from reported parameters, for evaluation."""
        ...
