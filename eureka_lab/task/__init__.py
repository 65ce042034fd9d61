"""Tasks: what to achieve (a behaviour in words), how it is judged (a hidden fitness over
finished episodes), the environment and the training budget.

:mod:`.model` is the task itself, :mod:`.load` reads task files, :mod:`.refs` resolves
``module:function`` references beside a task, :mod:`.envs` makes its environment, and
:mod:`.episode` is the fitness contract.
"""

from __future__ import annotations

from eureka_lab.task.episode import Episode, FitnessFn
from eureka_lab.task.load import builtin_task_files, load_task, load_task_file, task_from_dict
from eureka_lab.task.model import ENV_REWARD, NO_FITNESS, Task, TrainerChoice

__all__ = [
    "ENV_REWARD",
    "NO_FITNESS",
    "Episode",
    "FitnessFn",
    "Task",
    "TrainerChoice",
    "builtin_task_files",
    "load_task",
    "load_task_file",
    "task_from_dict",
]
