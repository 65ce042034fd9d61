"""Shared fixtures: tiny tasks that train in about a second."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def tiny_task_dict(**overrides: Any) -> dict[str, Any]:
    """MountainCar with a budget of a few hundred steps and 50-step episodes."""
    raw: dict[str, Any] = {
        "name": "tiny_car",
        "env_id": "MountainCar-v0",
        "max_episode_steps": 50,
        "description": "Drive the car up the right hill to the flag.",
        "timesteps": 512,
        "eval_episodes": 2,
        "checkpoints": 2,
        "trainer": {"name": "sb3", "n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1},
    }
    raw.update(overrides)
    return raw


@pytest.fixture
def tiny_task():
    from eureka_lab.task.load import task_from_dict

    return task_from_dict(tiny_task_dict())
