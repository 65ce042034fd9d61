"""The trainer seam: train one candidate's reward for a budget (see :mod:`.base`).

Trainers are chosen by name in the task's ``trainer`` block (``trainer: {name: sb3, ...}``)
or with ``--trainer``; the rest of the block is that trainer's settings, validated by its
``Settings`` model. Built-ins (``sb3``, ``ppo``, ``warp``) and a package's own trainers are
found through the entry-point group ``eureka_lab.trainers``. A task that names none gets
the machine's default (:mod:`.default`).
"""

from __future__ import annotations

from typing import Any

from eureka_lab.core.plugins import TRAINERS
from eureka_lab.task.model import Task, TrainerChoice
from eureka_lab.trainers.base import Budget, Resources, Trainer
from eureka_lab.trainers.default import trainer_choice

__all__ = ["TRAINERS", "Budget", "Resources", "Trainer", "make_trainer", "task_trainer"]


def make_trainer(choice: TrainerChoice | str, settings: dict[str, Any] | None = None) -> Trainer:
    """The trainer a task's ``trainer`` block names (or ``name`` with ``settings``), its
    settings validated by its ``Settings`` model."""
    if isinstance(choice, TrainerChoice):
        name, settings = choice.name, choice.settings
    else:
        name = choice
    cls = TRAINERS.get(name)
    trainer: Trainer = cls(cls.Settings.model_validate(settings or {}))
    return trainer


def task_trainer(task: Task) -> Trainer:
    """The trainer ``task`` names, or the machine's default where it names none."""
    return make_trainer(trainer_choice(task))
