"""Tasks for the tests: ``tiny_task_dict``, MountainCar on a budget that trains in about a
second, and ``write_task``, a task folder with seed rewards and a fitness beside its YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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


SEEDS = """
import numpy as np


def upright(obs, action, next_obs, info):
    components = {"upright": 1.0 * next_obs[:, 0]}
    total = sum(components.values())
    return total, components


def still(obs, action, next_obs, info):
    components = {"still": 0.5 * np.abs(next_obs[:, 2])}
    total = sum(components.values())
    return total, components


def height(obs, action, next_obs, info):
    components = {"height": 1.0 * np.sin(3 * next_obs[:, 0])}
    total = sum(components.values())
    return total, components


def speed(obs, action, next_obs, info):
    components = {"speed": 10.0 * np.abs(next_obs[:, 1])}
    total = sum(components.values())
    return total, components
"""

FITNESS = """
import numpy as np


def mean_action(episode):
    return float(np.mean(episode.actions))


def furthest(episode):
    return float(np.max(episode.observations[:, 0]))
"""


def seed_table_task_dict(**overrides: Any) -> dict[str, Any]:
    """A task whose fake trainer (SeedTableTrainer, ``support.doubles``) scores each reward
    as the reward itself writes down per training seed."""
    return tiny_task_dict(
        env_id="Pendulum-v1",
        max_episode_steps=5,
        timesteps=64,
        checkpoints=1,
        eval_episodes=2,
        fitness="support.doubles:mean_action",
        trainer={"name": "seed_table"},
        **overrides,
    )


def write_task(folder: Path, real: bool, trainer: str = "growing") -> Path:
    """A task that trains in well under a second. ``real``: MountainCar on the sb3 trainer
    in sandboxed jobs, scored by the furthest position reached (a fitness that differs
    from candidate to candidate); else Pendulum on the growing fake trainer (``support.doubles``),
    which runs in this process with ``--executor inline``."""
    (folder / "seeds.py").write_text(SEEDS)
    (folder / "fitness.py").write_text(FITNESS)
    if real:
        raw = tiny_task_dict(
            seed_rewards=["seeds:height", "seeds:speed"], fitness="fitness:furthest"
        )
    else:
        raw = tiny_task_dict(
            name="tiny_pendulum",
            env_id="Pendulum-v1",
            max_episode_steps=10,
            timesteps=1024,
            checkpoints=4,
            eval_episodes=1,
            fitness="fitness:mean_action",
            trainer={"name": trainer},
            seed_rewards=["seeds:upright", "seeds:still"],
        )
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
