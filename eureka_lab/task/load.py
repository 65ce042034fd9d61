"""Loading tasks: by built-in name, from a YAML file, or from a Gymnasium env id; every
field and code reference checked at load time, with a message that names the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from eureka_lab.core.errors import TaskError, did_you_mean
from eureka_lab.core.files import data_dir
from eureka_lab.task.envs import check_env_id
from eureka_lab.task.model import ENV_REWARD, NO_FITNESS, Task, TrainerChoice
from eureka_lab.task.refs import resolve_ref


def builtin_task_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(data_dir("envs").glob("*.yaml"))}


def load_task_file(path: str | Path) -> Task:
    path = Path(path).expanduser().resolve()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TaskError(f"Task file {path} does not exist.") from None
    except yaml.YAMLError as e:
        raise TaskError(f"Task file {path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"Task file {path} must hold a mapping of fields (name, env_id, ...).")
    raw.setdefault("source_dir", str(path.parent))
    return task_from_dict(raw, origin=str(path))


def task_from_dict(raw: dict[str, Any], origin: str = "task") -> Task:
    try:
        task = Task.model_validate(raw)
    except ValidationError as e:
        raise TaskError(_explain(e, origin)) from None
    check_env_id(task.env_id, task.source_dir)
    check_refs(task, origin)
    return task


def check_refs(task: Task, origin: str = "task") -> None:
    """Raise TaskError, naming the field, unless every code reference of ``task`` resolves
    to a function, and its batched definition to a class (caught at load time, not in a
    training child after paying for samples)."""
    fields = [(f, getattr(task, f)) for f in ("fitness", "human_reward", "sparse_reward")]
    fields += [(f"seed_rewards[{i}]", r) for i, r in enumerate(task.seed_rewards)]
    for name, ref in fields:
        if ref == ENV_REWARD or (name == "fitness" and ref == NO_FITNESS):
            continue
        try:
            obj = resolve_ref(ref, task.source_dir)
        except TaskError as e:
            raise TaskError(f"{origin}: field {name!r}: {e}") from None
        if not callable(obj):
            raise TaskError(f"{origin}: field {name!r}: {ref!r} is not a function.")
    if task.batched is not None:
        try:
            obj = resolve_ref(task.batched, task.source_dir)
        except TaskError as e:
            raise TaskError(f"{origin}: field 'batched': {e}") from None
        if not isinstance(obj, type):
            raise TaskError(
                f"{origin}: field 'batched': {task.batched!r} is not a class (a subclass of "
                "eureka_lab.batched.definition.Definition)."
            )


def _explain(e: ValidationError, origin: str) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(err["loc"][-1]), Task.model_fields) or " Remove it."
            lines.append(f"unknown key {loc!r}.{hint}")
        elif err["type"] == "missing":
            desc = Task.model_fields.get(loc)
            why = f" ({desc.description})" if desc and desc.description else ""
            lines.append(f"missing field {loc!r}{why}: add it.")
        elif err["type"] == "value_error":
            lines.append(f"field {loc!r}: {err['ctx']['error']}")
        else:
            lines.append(f"field {loc!r}: {err['msg']} (got {err.get('input')!r}).")
    return f"{origin}: " + "; ".join(lines)


def trainer_block(current: TrainerChoice | None, trainer: str | dict[str, Any]) -> dict[str, Any]:
    """The trainer block ``trainer`` names (``--trainer NAME``, or a block with settings):
    the task's own settings where it names the same trainer, else that trainer's defaults,
    with any settings given on top."""
    block = {"name": trainer} if isinstance(trainer, str) else dict(trainer)
    name = block.get("name", current.name if current else "sb3")
    settings = current.settings if current is not None and current.name == name else {}
    return {**settings, **block, "name": name}


def load_task(ref: str, **overrides: Any) -> Task:
    """Load a task by built-in name, by path to a YAML file, or from a Gymnasium env id.

    With an env id, ``overrides`` must include ``description``; the fitness is then the env's
    own return unless ``fitness`` is given. ``trainer`` (a name, or a block with settings)
    replaces the task's trainer block (:func:`trainer_block`).
    """
    trainer = overrides.pop("trainer", None)
    builtins = builtin_task_files()
    if ref in builtins:
        task = load_task_file(builtins[ref])
    elif ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        task = load_task_file(ref)
    else:
        import gymnasium as gym

        is_env = ref in gym.registry or (":" in ref)
        if not is_env:
            raise TaskError(
                f"{ref!r} is neither a built-in task, a task file, nor a Gymnasium env id."
                + did_you_mean(ref, list(builtins) + list(gym.registry.keys()))
                + " See `eureka-lab tasks`."
            )
        if not overrides.get("description"):
            raise TaskError(
                f'{ref!r} is an env id, not a task: add --description "what to achieve".'
            )
        raw: dict[str, Any] = {
            "name": ref.replace(":", "_").replace("/", "_"),
            "env_id": ref,
            "timesteps": 50_000,
        }
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if trainer is not None:
            raw["trainer"] = trainer_block(None, trainer)
        if raw.get("fitness") and ":" in raw["fitness"]:
            raw.setdefault("source_dir", str(Path.cwd()))
        return task_from_dict(raw, origin=ref)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if trainer is not None:
        changes["trainer"] = trainer_block(task.trainer, trainer)
    if changes:
        task = task_from_dict({**task.model_dump(), **changes}, origin=ref)
    return task
