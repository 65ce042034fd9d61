"""The trainer a task gets where it names none, chosen once when a run starts.

A task file (or ``--trainer``) that names a trainer keeps it. Where neither names one
(``Task.trainer`` is None: a task file without a ``trainer`` block, or an env id given as
the task), the run chooses by the machine and the env:

- ``warp`` where torch sees a CUDA device, MuJoCo Warp is installed and the env has a
  batched form (:func:`eureka_lab.batched.registry.definition_for`);
- ``ppo`` for every other env with a batched form (a CPU-only machine);
- ``sb3`` for the rest (any Gymnasium env).

The choice is recorded in the run's config with the task, so a resumed run keeps it on
any machine, and the run says it (event ``trainer_chosen``, a line from the command).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from eureka_lab.task.load import task_from_dict, trainer_block
from eureka_lab.task.model import Task, TrainerChoice


@dataclass(frozen=True)
class Chosen:
    """A default trainer and why it was chosen."""

    choice: TrainerChoice
    reason: str

    @property
    def line(self) -> str:
        """What the run says."""
        return f"trainer: {self.choice.name} (the default: {self.reason}; --trainer NAME to choose)"


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def default_trainer(task: Task) -> Chosen:
    """The trainer ``task`` gets where it names none (see the module's docstring)."""
    from eureka_lab.batched.registry import definition_for

    if definition_for(task) is None:
        return Chosen(TrainerChoice(name="sb3"), f"{task.env_id} has no batched form")
    batched = f"{task.env_id} has a batched form"
    if not cuda_available():
        return Chosen(TrainerChoice(name="ppo"), f"{batched}; torch sees no CUDA device")
    if importlib.util.find_spec("mujoco_warp") is None:
        return Chosen(
            TrainerChoice(name="ppo"),
            f"{batched} and torch sees a CUDA device, but MuJoCo Warp is not installed "
            "(pip install -e '.[gpu]')",
        )
    return Chosen(TrainerChoice(name="warp"), f"{batched} and torch sees a CUDA device")


def with_trainer(
    task: Task, trainer: str | dict[str, Any] | None = None
) -> tuple[Task, Chosen | None]:
    """``task`` with a trainer: ``trainer`` where given (a name, or a block with settings:
    ``--trainer`` and ``--trainer-option``), else the task's own, else the default; and
    the default where it was chosen (None where the task or ``trainer`` named one).
    A block of settings without a name applies to the trainer the task would get."""
    chosen = None
    current = task.trainer
    named = isinstance(trainer, str) or (isinstance(trainer, dict) and "name" in trainer)
    if current is None and not named:
        chosen = default_trainer(task)
        current = chosen.choice
    if trainer is not None:
        block = trainer_block(current, trainer)
        return task_from_dict({**task.model_dump(), "trainer": block}, task.name), chosen
    return task.model_copy(update={"trainer": current}), chosen


def trainer_choice(task: Task) -> TrainerChoice:
    """The trainer ``task`` names, or the default it gets (a run records its choice, so its
    jobs read it from the task)."""
    return task.trainer if task.trainer is not None else default_trainer(task).choice
