"""eureka-lab: language models write reward functions; PPO scores them; the loop evolves
better ones.

The public API, for scripts and notebooks::

    import eureka_lab as el

    run = el.run("mountain_car", iterations=2, samples=4)   # what `eureka-lab run` does
    run = el.resume(run.path)                                # what `eureka-lab resume` does
    run = el.load_run("runs/20261122-013731-mountain_car")  # read a run, finished or not
    for candidate in run.candidates:
        print(candidate.id, candidate.status, candidate.fitness, candidate.components)
    print(run.best.code)

The seams find implementations by name: ``TRAINERS``, ``EXECUTORS``, ``SELECTORS``,
``FEEDBACK`` and ``BACKENDS``, filled from the entry-point groups ``eureka_lab.trainers``,
``eureka_lab.executors``, ... (see :mod:`eureka_lab.core.registry`).

Names are imported on first use, so ``import eureka_lab`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "eureka_lab.api",
    "resume": "eureka_lab.api",
    "load_run": "eureka_lab.report.results",
    "Run": "eureka_lab.report.results",
    "Candidate": "eureka_lab.report.results",
    "diff": "eureka_lab.report.results",
    "TRAINERS": "eureka_lab.core.plugins",
    "EXECUTORS": "eureka_lab.core.plugins",
    "SELECTORS": "eureka_lab.core.plugins",
    "FEEDBACK": "eureka_lab.core.plugins",
    "BACKENDS": "eureka_lab.core.plugins",
    "Task": "eureka_lab.task.model",
    "load_task": "eureka_lab.task.load",
    "Episode": "eureka_lab.task.episode",
    "RunStore": "eureka_lab.runs.store",
    "Loop": "eureka_lab.loop.loop",
    "LoopConfig": "eureka_lab.runs.config",
    "BackendSettings": "eureka_lab.backends",
    "make_backend": "eureka_lab.backends",
    "build_context": "eureka_lab.prompt.context",
    "parse_response": "eureka_lab.reward.parsing",
    "check_code": "eureka_lab.reward.check",
    "EurekaError": "eureka_lab.core.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eureka_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
