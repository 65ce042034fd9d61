"""The Ray executor: the same candidate jobs as Ray tasks on a Ray cluster.

Each job becomes one Ray task that asks for the CPUs (and GPUs) its trainer needs. On its
node the task runs the job exactly as :class:`~eureka_lab.executors.local.LocalExecutor` does:
a sandboxed child under the same limits and lock-down, talking through bounded frames. The
task returns the job's output and events as data, which come back into the run directory
through the executor seam; nodes share no filesystem with the orchestrator. A task whose
worker or node dies is retried once; a second death fails that job alone.

Install with ``pip install "eureka-lab[ray]"``; choose with ``--executor ray
[--ray-address ADDRESS]`` (no address: a Ray instance on this machine).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.text import safe_text
from eureka_lab.executors.base import Executor, Job, JobEvent, JobOutput, OnEvent
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.trainers.base import Resources

RETRIES = 1
"""Times a task is run again when its worker or node dies."""


def run_on_node(
    spec: JobSpec, timeout: float, resources: Resources, allow_weak: bool
) -> dict[str, Any]:
    """Runs inside a Ray worker: the job in a sandboxed child on this node."""
    events: list[tuple[str, dict[str, Any], bytes | None]] = []
    executor = LocalExecutor(1, allow_weak_sandbox=allow_weak)
    out = executor.run(
        [Job("job", spec, timeout, resources)],
        on_event=lambda e: events.append((e.kind, e.data, e.artefact)),
    )["job"]
    return {
        "result": out.result,
        "reason": out.reason,
        "log_tail": out.log_tail,
        "seconds": out.seconds,
        "events": events,
    }


def describe_node(allow_weak: bool) -> list[str]:
    """Runs inside a Ray worker: the isolation layers of that node."""
    return LocalExecutor(1, allow_weak_sandbox=allow_weak).describe()


class RayExecutor(Executor):
    """Jobs as Ray tasks, at most ``workers`` in flight."""

    def __init__(
        self, workers: int, allow_weak_sandbox: bool = False, address: str | None = None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                'The ray executor needs Ray: pip install "eureka-lab[ray]".'
            ) from None
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.allow_weak_sandbox = allow_weak_sandbox
        if not ray.is_initialized():
            local = address is None or address.split(":")[0] in ("127.0.0.1", "localhost")
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    # A head on this machine: loopback only (None: Ray's own choice).
                    _node_ip_address="127.0.0.1" if local else None,
                )
            except ConnectionError as e:
                raise ConfigError(
                    f"Cannot reach the Ray cluster at {address!r} ({e}). Start one with "
                    "`ray start --head`, or leave out --ray-address to run Ray on this machine."
                ) from None
        self._ray = ray
        self._run = ray.remote(max_retries=RETRIES, retry_exceptions=False)(run_on_node)
        self._describe = ray.remote(describe_node)

    def describe(self) -> list[str]:
        ray = self._ray
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        layers = ray.get(self._describe.remote(self.allow_weak_sandbox), timeout=300)
        return [f"ray: {nodes} node(s); each job runs under this node's sandbox:", *layers]

    def _submit(self, job: Job) -> Any:
        return self._run.options(
            num_cpus=job.resources.threads, num_gpus=job.resources.gpus
        ).remote(job.spec, job.timeout, job.resources, self.allow_weak_sandbox)

    def run(self, jobs: Sequence[Job], on_event: OnEvent | None = None) -> dict[str, JobOutput]:
        """Run every job on the cluster; return outputs by job key. Ctrl-C cancels them."""
        ray = self._ray
        pending = list(jobs)
        running: dict[Any, Job] = {}
        outputs: dict[str, JobOutput] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job = pending.pop(0)
                    running[self._submit(job)] = job
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    job = running.pop(ref)
                    outputs[job.key] = self._collect(job, ref, on_event)
        except BaseException:
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return outputs

    def _collect(self, job: Job, ref: Any, on_event: OnEvent | None) -> JobOutput:
        try:
            data = self._ray.get(ref)
        except self._ray.exceptions.RayError as e:
            return JobOutput(
                None,
                f"the Ray task failed {RETRIES + 1} times ({type(e).__name__}: "
                f"{safe_text(e, 300)})",
            )
        if on_event is not None:
            for kind, event, artefact in data["events"]:
                on_event(JobEvent(job.key, kind, event, artefact))
        return JobOutput(data["result"], data["reason"], data["log_tail"], data["seconds"])
