"""Which definition implements a task's env: :data:`BATCHED`, by the env id tasks name."""

from __future__ import annotations

from typing import Any

from eureka_lab.batched.definition import Definition
from eureka_lab.batched.mujoco_envs import DEFINITIONS
from eureka_lab.core.registry import Registry

BATCHED: Registry[type[Definition]] = Registry(
    "batched environment", entries={d.env_id: d for d in DEFINITIONS}
)
"""Definitions (:mod:`eureka_lab.batched.definition`) by the env id tasks name: every one
of :data:`~eureka_lab.batched.mujoco_envs.DEFINITIONS`, and any registered beside them."""


def definition_for(task: Any) -> type[Definition] | None:
    """The definition that implements ``task``'s env as the task makes it; None where the
    env has none, or the task passes keyword arguments it cannot follow."""
    if task.env_id not in BATCHED:
        return None
    definition = BATCHED.get(task.env_id)
    return None if definition.unsupported(task.env_kwargs) else definition


def build_definition(task: Any, xp: Any) -> tuple[Definition, Any]:
    """``task``'s definition over ``xp``, and the env it is built from, as the task makes
    it (the model exactly as Gymnasium compiles it, the spaces, the time limit); ValueError
    where no definition implements the env as the task makes it."""
    cls = definition_for(task)
    if cls is None:
        raise ValueError(f"no batched definition implements {task.env_id} as the task makes it")
    env = task.make_env()
    return cls(env.unwrapped, {**cls.keyword_defaults(), **task.env_kwargs}, xp), env
