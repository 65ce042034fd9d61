"""The trainer seam: train one candidate's reward for a budget (see :mod:`.base`).

Trainers are chosen by name in the task's ``trainer`` block (``trainer: {name: sb3, ...}``);
the rest of the block is that trainer's settings, validated by its ``Settings`` model.
"""

from __future__ import annotations

from typing import Any

from eureka_lab.core.registry import Registry
from eureka_lab.trainers.base import Budget, Resources, Trainer

__all__ = ["TRAINERS", "Budget", "Resources", "Trainer", "make_trainer"]

TRAINERS: Registry[type[Trainer]] = Registry(
    "trainer",
    {
        "sb3": "eureka_lab.trainers.sb3:SB3Trainer",
        "ppo": "eureka_lab.trainers.ppo:PPOTrainer",
        "warp": "eureka_lab.trainers.warp:WarpTrainer",
    },
)


def make_trainer(name: str, settings: dict[str, Any] | None = None) -> Trainer:
    """The trainer ``name`` with ``settings`` validated by its ``Settings`` model."""
    cls = TRAINERS.get(name)
    return cls(cls.Settings.model_validate(settings or {}))
