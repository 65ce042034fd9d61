"""The trainer protocol.

A trainer runs in two places:

- :meth:`Trainer.train` runs in the candidate's sandboxed process. It builds its
  environments and model, then calls ``load_reward()``: that confines the process (no
  files, no network, no new processes) and returns the candidate's reward function (None
  for the environment's own reward). At each checkpoint it calls ``report(stats, policy)``
  with the training statistics and the policy's parameters as plain float arrays. It never
  measures fitness. A trainer that can continue later (``resumable``) passes its whole
  training state at the last report when ``budget.keep_state`` asks for it, and picks up
  from ``budget.resume`` at ``budget.start``: successive halving trains in rounds.
- A trainer may also train several rewards in one process (``group`` > 1 and
  ``train_group(task, load_rewards, budget, reports)``, one loader and one report each,
  returning a report or the exception per reward): the loop then sends fresh trainings
  of one seed in groups, one job each. Rewards in one process are not isolated from each
  other; fitness is still measured apart, by the evaluator.
- :meth:`Trainer.policy` runs in the evaluator, which never loads reward code: it rebuilds
  the policy from those arrays (after the orchestrator checked them) for rollouts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import BaseModel

from eureka_lab.reward.contract import RewardFn
from eureka_lab.runs.records import CheckpointStats, TrainingReport
from eureka_lab.task.model import Task

Arrays = dict[str, np.ndarray]
Act = Callable[[np.ndarray], np.ndarray]


class Report(Protocol):
    """Called at each checkpoint; ``state``: the trainer's full state (the last call only,
    when ``budget.keep_state``)."""

    def __call__(
        self, stats: CheckpointStats, policy: Arrays, state: Arrays | None = None
    ) -> None: ...


@dataclass(frozen=True)
class Budget:
    """How long to train, and how often to report."""

    timesteps: int
    """The step to train to (counted from the very start, ``start`` included)."""
    seed: int
    checkpoints: int
    """Checkpoints over ``[0, timesteps]``, or over ``[0, full]`` with ``every``."""
    start: int = 0
    """Steps already trained (a continued training): the step ``resume`` was saved at."""
    resume: Arrays | None = None
    """The state a resumable trainer saved, to continue from (None: a fresh start)."""
    keep_state: bool = False
    """Pass the training state with the last report, to continue later."""
    every: int | None = None
    """Steps between checkpoints (None: ``timesteps // checkpoints``); the end of training
    is always a checkpoint."""

    @property
    def interval(self) -> int:
        return max(1, self.every or self.timesteps // max(1, self.checkpoints))

    def due(self, step: int, last: int) -> bool:
        """Whether a checkpoint falls in ``(last, step]`` before the end of training."""
        return step < self.timesteps and step // self.interval > last // self.interval


class PPOLikeSettings(Protocol):
    """What :func:`ppo_description` reads of a PPO trainer's settings."""

    @property
    def gamma(self) -> float: ...

    @property
    def normalize_reward(self) -> bool: ...

    @property
    def normalize_obs(self) -> bool: ...


def ppo_description(algorithm: str, settings: PPOLikeSettings) -> dict[str, Any]:
    """What the prompt says of a PPO trainer: its name, discount, normalisation (the env
    count is the loop's to say: :meth:`Trainer.envs_for` the run's budget)."""
    return {
        "algorithm": algorithm,
        "settings": {
            "discount": settings.gamma,
            "rewards normalised": "yes" if settings.normalize_reward else "no",
            "observations normalised": "yes" if settings.normalize_obs else "no",
        },
    }


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


class Trainer:
    """Trains one reward (or a group of them); built from its validated ``Settings``.

    Subclasses set ``Settings`` and implement :attr:`n_envs`, :attr:`resources`,
    :meth:`describe`, :meth:`train` and :meth:`policy`. The optional parts have defaults
    here: :attr:`resumable`, :attr:`reward_namespace`, :attr:`group`, :meth:`envs_for` and
    :meth:`train_group`."""

    Settings: ClassVar[type[BaseModel]]
    """The task's trainer block (minus ``name``) is validated by this model."""
    resumable: ClassVar[bool] = False
    """Whether :meth:`train` continues from ``budget.resume`` (else it starts afresh)."""
    reward_namespace: ClassVar[str] = "numpy"
    """``numpy``, or ``torch``: :meth:`train` calls ``load_reward(namespace="torch",
    device=...)`` and the reward gets tensors; validation then also runs it on tensors."""

    def __init__(self, settings: BaseModel) -> None:
        self.settings = settings

    @property
    def n_envs(self) -> int:
        """Parallel environments the reward is called on (the first axis of its inputs)."""
        raise NotImplementedError

    @property
    def resources(self) -> Resources:
        """What one training process needs (threads, device, memory, a GPU share)."""
        raise NotImplementedError

    @property
    def group(self) -> int:
        """Rewards trained together in one process by :meth:`train_group` (1: each alone)."""
        return 1

    def envs_for(self, timesteps: int) -> int:
        """The env count a training of ``timesteps`` steps uses (trainers that choose it
        from the budget override this)."""
        return self.n_envs

    def describe(self) -> dict[str, Any]:
        """The algorithm and main settings, for the prompt: ``{"algorithm": ...,
        "settings": {name: value}}``. Not the env count: the prompt says
        :meth:`envs_for` the run's budget, in the system message and the task alike."""
        raise NotImplementedError

    def train(
        self,
        task: Task,
        load_reward: Callable[..., RewardFn | None],
        budget: Budget,
        report: Report,
    ) -> TrainingReport:
        raise NotImplementedError

    def train_group(
        self,
        task: Task,
        load_rewards: Sequence[Callable[..., RewardFn | None]],
        budget: Budget,
        reports: Sequence[Report],
    ) -> list[TrainingReport | BaseException]:
        """Train several rewards in this process, each on its own environments: a report or
        the exception per reward (one that raises fails alone). By default one after the
        other; trainers with a ``group`` setting step them together."""
        outcomes: list[TrainingReport | BaseException] = []
        for load, report in zip(load_rewards, reports, strict=True):
            try:
                outcomes.append(self.train(task, load, budget, report))
            except Exception as e:  # noqa: BLE001 - the reward's failure is its own
                outcomes.append(e)
        return outcomes

    def policy(self, task: Task, arrays: Arrays) -> Act:
        """A deterministic policy from reported parameters, for evaluation."""
        raise NotImplementedError
