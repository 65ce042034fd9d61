"""The local executor: candidate jobs as sandboxed child processes on this machine.

:class:`LocalExecutor` runs each job in a child process on this machine, at most
``workers`` at a time. Children are forked from a server process that has already imported
torch, stable-baselines3 and gymnasium (multiprocessing's ``forkserver`` with a preload,
:mod:`.child`), so a job starts in milliseconds; the server's environment is an allow-list.
Each child runs in a private scratch folder outside the run directory, under the process
limits of :mod:`eureka_lab.isolation.limits`; a job that runs candidate code confines itself
(:mod:`eureka_lab.isolation.lockdown`) once set-up is done. Its only way out is a pipe of
bounded frames (:mod:`.channel`), read by a thread per job; the parent never
unpickles anything a child sent and never reads log text for control flow. A child that
crashes, is killed, breaks the protocol or outlives its wall-clock limit fails that job
alone, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from eureka_lab.core.text import safe_text
from eureka_lab.executors import child
from eureka_lab.executors.base import Executor, Job, JobEvent, JobOutput, OnEvent
from eureka_lab.executors.channel import Frame, ProtocolError, read_frames
from eureka_lab.isolation import limits as sandbox_limits
from eureka_lab.isolation import probing

PIPE_GRACE_SECONDS = 5.0
"""How long the parent waits for a finished job's pipe to close."""


def gpu_count() -> int:
    """GPUs torch sees here (0 without torch's CUDA build or a driver)."""
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no usable CUDA is no GPU
        return 0


def gpu_slot(loads: list[float], need: float) -> int | None:
    """The GPU a job needing ``need`` of one fits on (the least loaded that has room), or
    None while none has room. ``loads``: the share of each GPU taken by running jobs."""
    fits = [i for i, load in enumerate(loads) if load + need <= 1.0 + 1e-9]
    return min(fits, key=lambda i: loads[i]) if fits else None


def cpu_slots(workers: int, cpus: Sequence[int] | None = None) -> list[tuple[int, ...]]:
    """The cores each of ``workers`` parallel jobs is pinned to: the usable cores split into
    equal, disjoint groups (one core each when there are as many workers as cores); with more
    workers than cores, they share cores in turn."""
    cpus = sorted(os.sched_getaffinity(0)) if cpus is None else list(cpus)
    if workers >= len(cpus):
        return [(cpus[i % len(cpus)],) for i in range(workers)]
    size = len(cpus) // workers
    return [tuple(cpus[i * size : (i + 1) * size]) for i in range(workers)]


@dataclass
class _Running:
    job: Job
    proc: BaseProcess
    scratch: Path
    frames: queue.Queue[Frame | BaseException | None]
    started: float = field(default_factory=time.monotonic)
    result: dict[str, Any] | None = None
    broken: str | None = None
    reader_done: bool = False
    exited: float | None = None
    timed_out: bool = False
    slot: int = 0
    gpu: int | None = None


def _signal_reason(code: int | None) -> str:
    if code is None or code >= 0:
        return f"the worker exited with status {code} without writing a result"
    sig = -code
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    why = {
        "SIGKILL": "killed (out of memory, or a resource limit)",
        "SIGSEGV": "crashed with a segmentation fault",
        "SIGXCPU": "ran past its CPU-time limit",
        "SIGXFSZ": "wrote a file past the size limit",
        "SIGABRT": "aborted",
        "SIGBUS": "crashed with a bus error",
    }.get(name, "was terminated")
    return f"the worker {why} ({name})"


def _log_tail(scratch: Path, chars: int = 2000) -> str:
    try:
        with open(scratch / child.LOG, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return safe_text(f.read().decode("utf-8", "replace"), chars)
    except OSError:
        return ""


def _reader(
    conn: Any, frames: queue.Queue[Frame | BaseException | None], wake: queue.Queue[None]
) -> None:
    try:
        for frame in read_frames(conn):
            frames.put(frame)
            wake.put(None)
    except ProtocolError as e:
        frames.put(e)
    except Exception as e:  # the pipe broke in another way
        frames.put(ProtocolError(f"reading the job's pipe failed: {type(e).__name__}"))
    finally:
        conn.close()
        frames.put(None)
        wake.put(None)


class LocalExecutor(Executor):
    """Child processes on this machine, under the OS sandbox."""

    def __init__(
        self,
        workers: int,
        limits: sandbox_limits.Limits | None = None,
        allow_weak_sandbox: bool = False,
        gpus: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.gpus = gpus
        """GPUs to place jobs on (None: as many as torch sees, counted when a job needs
        one). A job needing a share of a GPU (``resources.gpus``) waits until one has that
        much free, and sees only that GPU."""
        self.limits = limits or probing.supported(sandbox_limits.Limits())
        self.allow_weak_sandbox = allow_weak_sandbox
        self._checked = False
        self.slots = cpu_slots(workers)
        """The cores of each parallel job (``cpu_slots``)."""

    def describe(self) -> list[str]:
        caps = dict(probing.capabilities())
        if self.limits.network:
            caps["network"] = "allowed by the executor's limits (network=True)"
        if not self.limits.drops and caps.get("privileges") is True:
            caps["privileges"] = "not requested (drop_privileges=False, or not running as root)"
        return probing.describe(caps).splitlines()

    def _limits_for(self, job: Job) -> sandbox_limits.Limits:
        wall = job.timeout + 60
        return replace(
            self.limits,
            memory_bytes=job.resources.memory_bytes,
            wall_seconds=wall,
            cpu_seconds=int(wall * max(1, job.resources.threads)) + 60,
        )

    def _start(
        self,
        job: Job,
        running: list[_Running],
        wake: queue.Queue[None],
        slot: int = 0,
        gpu: int | None = None,
    ) -> None:
        limits = self._limits_for(job)
        scratch = Path(tempfile.mkdtemp(prefix="eureka-job-"))
        sandbox_limits.prepare_workdir(scratch, limits)
        env = sandbox_limits.child_env(scratch, os.environ)
        for var in child.THREAD_VARIABLES:  # no thread may start before the job confines itself
            env[var] = str(job.resources.threads)
        # A job sees the GPU it was placed on (as device 0), or none.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
        if gpu is None:
            env["CUDA_VISIBLE_DEVICES"] = ""
        else:
            env["CUDA_VISIBLE_DEVICES"] = (
                visible[gpu] if gpu < len(visible) and visible[gpu] else str(gpu)
            )
        ctx = child.fork_context()
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=child.main,
            args=(
                job.spec,
                writer,
                str(scratch),
                limits,
                env,
                self.allow_weak_sandbox,
                self.slots[slot],
                job.resources.device == "cuda",
            ),
            name=f"eureka-lab {job.key}",
            daemon=False,
        )
        frames: queue.Queue[Frame | BaseException | None] = queue.Queue()
        run = _Running(job, proc, scratch, frames, slot=slot, gpu=gpu)
        running.append(run)  # before start, so that an interrupt from here on kills it
        with child.main_module_hidden():
            proc.start()
        writer.close()
        threading.Thread(target=_reader, args=(reader, frames, wake), daemon=True).start()

    @staticmethod
    def _kill(run: _Running) -> None:
        if run.proc.pid is None:  # interrupted before it started
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            run.proc.kill()
        run.proc.join()

    def _drain(self, run: _Running, on_event: OnEvent | None) -> None:
        while True:
            try:
                item = run.frames.get_nowait()
            except queue.Empty:
                return
            if item is None:
                run.reader_done = True
            elif isinstance(item, BaseException):
                run.broken = f"the job broke the protocol: {item}"
                self._kill(run)
            elif item.kind == "result":
                run.result = item.data
            elif on_event is not None and run.broken is None:
                on_event(JobEvent(run.job.key, item.kind, item.data, item.artefact))

    def _finish(self, run: _Running) -> JobOutput:
        seconds = round(time.monotonic() - run.started, 2)
        tail = _log_tail(run.scratch)
        shutil.rmtree(run.scratch, ignore_errors=True)
        if run.timed_out:
            reason = f"timed out after {run.job.timeout:.0f} s (wall-clock limit)"
            return JobOutput(None, reason, tail, seconds)
        if run.broken is not None:
            return JobOutput(None, run.broken, tail, seconds)
        if run.result is None:
            return JobOutput(None, _signal_reason(run.proc.exitcode), tail, seconds)
        return JobOutput(run.result, None, tail, seconds)

    def _next(self, pending: list[Job], running: list[_Running]) -> tuple[Job | None, int | None]:
        """The first pending job that can start now, and the GPU it goes on (None: none)."""
        for job in pending:
            need = job.resources.gpus
            if need <= 0:
                return job, None
            if self.gpus is None:
                self.gpus = gpu_count()
            if not self.gpus:
                return job, None  # no GPU here: the job itself says what it lacks
            loads = [0.0] * self.gpus
            for r in running:
                if r.gpu is not None:
                    loads[r.gpu] += r.job.resources.gpus
            slot = gpu_slot(loads, min(need, 1.0))
            if slot is not None:
                return job, slot
        return None, None

    def run(self, jobs: Sequence[Job], on_event: OnEvent | None = None) -> dict[str, JobOutput]:
        """Run every job; return outputs by job key. Ctrl-C kills the children and re-raises."""
        if not self._checked and any(j.spec.runs_candidate_code for j in jobs):
            probing.require_strong(probing.capabilities(), self.allow_weak_sandbox)
            self._checked = True
        pending = list(jobs)
        running: list[_Running] = []
        outputs: dict[str, JobOutput] = {}
        wake: queue.Queue[None] = queue.Queue()
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job, gpu = self._next(pending, running)
                    if job is None:
                        break  # every job left waits for a GPU share
                    busy = {r.slot for r in running}
                    free = next(i for i in range(self.workers) if i not in busy)
                    pending.remove(job)
                    self._start(job, running, wake, free, gpu)
                with contextlib.suppress(queue.Empty):
                    wake.get(timeout=0.1)
                for run in list(running):
                    self._drain(run, on_event)
                    if run.proc.exitcode is None and run.broken is None:
                        if time.monotonic() - run.started <= run.job.timeout:
                            continue
                        run.timed_out = True
                        self._kill(run)
                    if run.proc.exitcode is not None and not run.reader_done:
                        # The child is gone and its pipe closes: wait for the last frames,
                        # but not for a stray process still holding the pipe.
                        run.exited = run.exited or time.monotonic()
                        if time.monotonic() - run.exited < PIPE_GRACE_SECONDS:
                            continue
                        self._kill(run)
                        run.broken = run.broken or "the job left a process behind holding its pipe"
                    run.proc.join()
                    self._kill(run)  # anything left in the job's session goes with it
                    running.remove(run)
                    outputs[run.job.key] = self._finish(run)
        except BaseException:
            for run in running:
                self._kill(run)
                shutil.rmtree(run.scratch, ignore_errors=True)
            raise
        return outputs
