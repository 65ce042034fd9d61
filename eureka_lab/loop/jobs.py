"""The loop's jobs: built with the trainer's resources and what they must never read, and
run by the executor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from eureka_lab.executors.base import Executor, Job, JobOutput, OnEvent
from eureka_lab.executors.job import JobSpec
from eureka_lab.trainers.base import Trainer


class Jobs:
    """Makes and runs the jobs of one run."""

    def __init__(self, executor: Executor, trainer: Trainer, private: Sequence[str]) -> None:
        self.executor = executor
        self.trainer = trainer
        self.private = tuple(private)
        """Paths no job may read (the run folder with every candidate's files)."""

    def make(self, key: str, spec: JobSpec, timeout: float) -> Job:
        """A job with the trainer's resources; only training takes a GPU share."""
        resources = self.trainer.resources
        if spec.kind != "train" and resources.gpus:
            resources = replace(resources, device="cpu", gpus=0.0)
        return Job(key, replace(spec, private=self.private), timeout, resources)

    def run(self, jobs: Sequence[Job], on_event: OnEvent | None = None) -> dict[str, JobOutput]:
        return self.executor.run(jobs, on_event=on_event)
