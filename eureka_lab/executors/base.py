"""The executor seam: run jobs, return their outputs as data, report progress as events.

An :class:`Executor` takes :class:`Job` objects (inputs as data: a
:class:`~eureka_lab.executors.job.JobSpec`) and returns a :class:`JobOutput` per job;
while jobs run, every frame they send arrives through ``on_event`` as a
:class:`JobEvent`, untrusted until the loop validates it. Executors are chosen by name
from :data:`EXECUTORS`: ``local`` (:mod:`.local`), ``ray`` (:mod:`.ray`), and any a
package announces in the entry-point group ``eureka_lab.executors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.plugins import EXECUTORS
from eureka_lab.executors.job import JobSpec
from eureka_lab.trainers.base import Resources

__all__ = ["EXECUTORS", "Executor", "Job", "JobEvent", "JobOutput", "OnEvent", "make_executor"]


@dataclass(frozen=True)
class Job:
    """One unit of work: its key (unique in one ``run`` call), inputs and limits."""

    key: str
    spec: JobSpec
    timeout: float
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True)
class JobEvent:
    """A frame a job sent while running (e.g. a checkpoint), untrusted until validated."""

    key: str
    kind: str
    data: dict[str, Any]
    artefact: bytes | None = None


@dataclass(frozen=True)
class JobOutput:
    """What a job returned: its ``result`` frame's data (untrusted until validated), or
    why there is none."""

    result: dict[str, Any] | None
    reason: str | None = None
    log_tail: str = ""
    seconds: float = 0.0


OnEvent = Callable[[JobEvent], None]


class Executor:
    """Runs jobs; returns outputs by job key. Ctrl-C stops every job and re-raises.

    Built by name from :data:`EXECUTORS` as ``cls(workers=..., allow_weak_sandbox=...,
    **options)``, where ``options`` are the executor's own settings (``--executor-option
    key=value``: Ray's ``address``, a Slurm executor's partition, ...)."""

    def describe(self) -> list[str]:
        """One line per isolation layer: what is active for jobs, and what is not."""
        raise NotImplementedError

    def run(self, jobs: Sequence[Job], on_event: OnEvent | None = None) -> dict[str, JobOutput]:
        raise NotImplementedError


def make_executor(
    name: str, workers: int, allow_weak_sandbox: bool = False, **options: Any
) -> Executor:
    """The executor registered as ``name``, with its own ``options`` (e.g. Ray's
    ``address``); an option it does not take is a ConfigError naming it."""
    factory = EXECUTORS.get(name)
    try:
        executor: Executor = factory(
            workers=workers, allow_weak_sandbox=allow_weak_sandbox, **options
        )
    except TypeError as e:
        if "unexpected keyword" not in str(e):
            raise
        raise ConfigError(
            f"The {name} executor does not take the option(s) {sorted(options)} ({e})."
        ) from None
    return executor
