"""Tasks for the tests: ``tiny_task_dict``, MountainCar on a budget that trains in about a
second."""

from __future__ import annotations

from typing import Any


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
