"""The fastest batched form of a task's env."""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

from eureka_lab.batched.base import BatchedEnv, GymBatch
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.batched.registry import named_definition, unsupported


def make_batched(task: Any, num_envs: int, threads: int = 1) -> BatchedEnv:
    """The fastest batched form of ``task``'s env: stepped in C where a definition
    implements it (the task's own, or the registered one), else :class:`GymBatch`, which it says once per process: as a warning
    where a definition exists but the task passes keyword arguments it cannot follow, in
    the log where the env has none (every env but the MuJoCo ones)."""
    definition = named_definition(task)
    if definition is None:
        _fallback_notice(task.env_id, "")
        return GymBatch(task.make_env, num_envs)
    refused = unsupported(task, definition)
    if refused:
        _fallback_notice(task.env_id, "the keyword arguments " + ", ".join(refused))
        return GymBatch(task.make_env, num_envs)
    return MujocoBatch(task, num_envs, threads)


@functools.cache
def _fallback_notice(env_id: str, unsupported: str) -> None:
    """Say why ``env_id`` runs on GymBatch: the ``unsupported`` part of the task, or (where
    empty) that no definition implements the env."""
    fallback = "it runs on Gymnasium, one env after another (GymBatch)"
    if unsupported:
        warnings.warn(
            f"{env_id}: its batched form does not implement {unsupported}; {fallback}",
            stacklevel=3,
        )
    else:
        logging.getLogger(__name__).info("%s has no batched definition; %s", env_id, fallback)
