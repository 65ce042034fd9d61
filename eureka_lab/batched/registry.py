"""Which definition implements a task's env: the one the task names (``batched:
module:Class``, beside the task file), else :data:`BATCHED`'s, by the env id tasks name."""

from __future__ import annotations

from typing import Any

from eureka_lab.batched.definition import Definition
from eureka_lab.batched.mujoco_envs import DEFINITIONS
from eureka_lab.core.errors import TaskError
from eureka_lab.core.registry import Registry
from eureka_lab.task.envs import is_class_ref
from eureka_lab.task.refs import resolve_ref

BATCHED: Registry[type[Definition]] = Registry(
    "batched environment", entries={d.env_id: d for d in DEFINITIONS}
)
"""Definitions (:mod:`eureka_lab.batched.definition`) by the env id tasks name: every one
of :data:`~eureka_lab.batched.mujoco_envs.DEFINITIONS`, and any a package registers."""


def named_definition(task: Any) -> type[Definition] | None:
    """The definition of ``task``'s env, whatever its keyword arguments: the task's own
    (its ``batched`` field, resolved beside the task file), else the registered one for
    its env id; None where there is neither."""
    ref = task.batched
    if ref:
        cls = resolve_ref(ref, task.source_dir)
        if not (isinstance(cls, type) and issubclass(cls, Definition)):
            raise TaskError(
                f"field 'batched': {ref!r} is not a subclass of "
                "eureka_lab.batched.definition.Definition"
            )
        return cls
    return BATCHED.get(task.env_id) if task.env_id in BATCHED else None


def env_class(task: Any) -> Any:
    """The class (or ``"module:Class"``) of the env ``task`` makes: a ``module:Class`` env
    id resolved beside the task file, or a registered id's entry point."""
    if is_class_ref(task.env_id):
        return resolve_ref(task.env_id, task.source_dir)
    import gymnasium as gym

    return gym.spec(task.env_id).entry_point


def unsupported(task: Any, definition: type[Definition]) -> list[str]:
    """The keyword arguments of ``task`` that ``definition`` cannot follow."""
    if not task.env_kwargs:
        return []
    return definition.unsupported(
        task.env_kwargs, None if definition.env_class else env_class(task)
    )


def definition_for(task: Any) -> type[Definition] | None:
    """The definition that implements ``task``'s env as the task makes it; None where the
    env has none, or the task passes keyword arguments it cannot follow."""
    definition = named_definition(task)
    if definition is None or unsupported(task, definition):
        return None
    return definition


def build_definition(task: Any, xp: Any) -> tuple[Definition, Any]:
    """``task``'s definition over ``xp``, and the env it is built from, as the task makes
    it (the model exactly as Gymnasium compiles it, the spaces, the time limit); ValueError
    where no definition implements the env as the task makes it."""
    cls = definition_for(task)
    if cls is None:
        raise ValueError(f"no batched definition implements {task.env_id} as the task makes it")
    env = task.make_env()
    core = env.unwrapped
    defaults = cls.keyword_defaults(None if cls.env_class else type(core))
    return cls(core, {**defaults, **task.env_kwargs}, xp), env
