"""The child side of a local job: the fork server every job is forked from (its imports
made once, its environment an allow-list), and what a forked job does before it runs:
its own session, log and descriptors, its limits, then confinement before reward code
loads."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from eureka_lab.executors import job as worker
from eureka_lab.executors.channel import Channel
from eureka_lab.executors.job import JobSpec
from eureka_lab.isolation import limits as sandbox_limits
from eureka_lab.task.model import Task

LOG = "job.log"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PRELOAD = ["eureka_lab.executors._preload"]
"""Imported once by the fork server; every job inherits the imports."""

_context: Any = None


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep multiprocessing from re-running the caller's ``__main__`` (a user's script,
    the CLI) in the fork server and in every child: jobs need only importable code."""
    main = sys.modules["__main__"]
    saved: dict[str, object] = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            del main.__spec__


def fork_context() -> Any:
    """The forkserver context, started once per process with a scrubbed environment."""
    global _context
    if _context is None:
        from multiprocessing import forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        saved = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update(sandbox_limits.child_env(Path.cwd(), saved))
            os.environ["HOME"] = saved.get("HOME", "/")
            for var in THREAD_VARIABLES:
                os.environ[var] = "1"
            # MuJoCo picks its GL backend when imported: offscreen EGL works without a display.
            os.environ.setdefault("MUJOCO_GL", "egl")
            with main_module_hidden():
                forkserver.ensure_running()
                # The server imports PRELOAD before it forks anything: wait for that here,
                # once, so the imports never count against a job's wall-clock limit.
                probe = ctx.Process(target=_ready)
                probe.start()
                probe.join()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        _context = ctx
    return _context


def _ready() -> None:
    """A child that does nothing: its start shows the fork server is ready."""


def main(
    spec: JobSpec,
    conn: Any,
    scratch: str,
    limits: sandbox_limits.Limits,
    env: dict[str, str],
    allow_weak: bool = False,
    cpus: tuple[int, ...] = (),
    gpu: bool = False,
) -> None:
    """Runs in the forked child: own session, log, descriptors, environment and limits,
    then the job."""
    os.setsid()
    if cpus:  # pinned before any thread starts, so every thread stays on the job's cores
        os.sched_setaffinity(0, cpus)
    log = os.open(os.path.join(scratch, LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    close_inherited(keep=[conn.fileno()])
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update(env)
    sandbox_limits.preexec(limits, scratch)()

    channel = Channel(conn)
    confine = _confinement(spec, allow_weak, gpu) if spec.runs_candidate_code else (lambda: None)
    try:
        worker.run_job(spec, channel, confine)
    except BaseException as e:
        with contextlib.suppress(BaseException):
            channel.send("result", worker.failure("job", e, spec.code))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def open_descriptors() -> list[int]:
    """This process's open file descriptors."""
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


def close_inherited(keep: Collection[int]) -> None:
    """Close every descriptor but the standard streams and ``keep`` (the job's channel).

    A forked job inherits the fork server's descriptors: its liveness pipe and the write end
    of multiprocessing's resource tracker, an unconfined process outside the sandbox that
    unlinks whatever shared memory a ``REGISTER`` line names when the run ends. Closed, and
    the tracker's functions disabled, before anything else runs, so no helper outside the
    sandbox acts on what a job writes."""
    for fd in open_descriptors():
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, already closed
                os.close(fd)
    from multiprocessing import resource_tracker

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("a job has no multiprocessing resource tracker")

    for name in ("ensure_running", "register", "unregister"):
        setattr(resource_tracker, name, refuse)


def _confinement(spec: JobSpec, allow_weak: bool, gpu: bool = False) -> Callable[[], None]:
    """What a job that runs candidate code calls once its set-up is done: confine the
    process, and refuse to go on with a layer missing unless a weaker sandbox is accepted.
    ``gpu``: the job computes on a GPU, so it keeps its driver's device files and ioctls."""

    def confine() -> None:
        from eureka_lab.core.errors import SandboxError
        from eureka_lab.isolation import lockdown

        task = Task.model_validate(spec.task)
        extra: list[str | os.PathLike[str]] = list(task.job_readable())
        devices = lockdown.gpu_devices() if gpu else []
        if devices:
            extra += lockdown.NVIDIA_READ_PATHS
        hidden: list[str | os.PathLike[str]] = [*task.job_private(), *spec.private]
        state = lockdown.lock_down(
            lockdown.default_read_paths(extra), devices=devices, hidden=hidden
        )
        missing = {layer: why for layer, why in state.items() if why is not True}
        for layer, why in missing.items():
            sys.stderr.write(f"eureka-lab sandbox: {layer} NOT applied: {why}\n")
        if missing and not allow_weak:
            raise SandboxError(
                "the job could not confine itself ("
                + "; ".join(f"{k}: {v}" for k, v in missing.items())
                + "); accept a weaker sandbox with --allow-weak-sandbox"
            )

    return confine
