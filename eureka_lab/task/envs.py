"""Making a task's environment: a registered Gymnasium id or a ``module:Class`` (beside the
task file first), with MuJoCo's warnings about Gymnasium's own model files kept quiet."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eureka_lab.core.errors import TaskError, did_you_mean
from eureka_lab.task.refs import resolve_ref


def is_class_ref(env_id: str) -> bool:
    """Whether ``env_id`` names an env class (``module:Class``), not a registered id."""
    return ":" in env_id and env_id.split(":", 1)[1][:1].isupper()


def check_env_id(env_id: str, source_dir: Path | None = None) -> None:
    """Raise TaskError unless ``env_id`` is a registered id or a module:Class importable
    beside the task (``source_dir``) or from the installed packages."""
    import gymnasium as gym

    if is_class_ref(env_id):
        resolve_ref(env_id, source_dir)
        return
    if env_id not in gym.registry:
        try:
            gym.spec(env_id)  # also imports 'module:id' style namespaces
            return
        except Exception:
            pass
        raise TaskError(
            f"Gymnasium does not know the env id {env_id!r}."
            + did_you_mean(env_id, gym.registry.keys())
            + " Use a registered id (see gymnasium.pprint_registry()) or 'module:Class'."
        )


KNOWN_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)
"""Warnings MuJoCo prints for Gymnasium's own model files, which no user can act on."""


@contextlib.contextmanager
def quiet_known_mujoco_warnings() -> Iterator[None]:
    """Drop only the MuJoCo warnings above while a model is loaded; pass any other on."""
    try:
        import mujoco
    except ImportError:
        yield
        return
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if any(known in message for known in KNOWN_MUJOCO_WARNINGS):
            return
        if previous is not None:
            previous(message)
        else:
            sys.stderr.write(f"WARNING: {message}\n")

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    source_dir: Path | None = None,
) -> Any:
    with quiet_known_mujoco_warnings():
        return _make_env(env_id, env_kwargs, max_episode_steps, render_mode, source_dir)


def _make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    max_episode_steps: int | None,
    render_mode: str | None,
    source_dir: Path | None,
) -> Any:
    import gymnasium as gym

    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if is_class_ref(env_id):
        cls = resolve_ref(env_id, source_dir)
        env = cls(**kwargs)
        env = gym.wrappers.TimeLimit(env, max_episode_steps or 1000)
        return gym.wrappers.OrderEnforcing(env)
    return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
