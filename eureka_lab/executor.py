"""The executor: runs candidate jobs in child processes, at most ``workers`` at a time.

Each job runs :func:`eureka_lab.worker.main` in a fresh process under the sandbox's process
limits. Children are forked from a server process that has already imported torch,
stable-baselines3 and gymnasium (multiprocessing's ``forkserver`` with a preload), so a job
starts in milliseconds instead of the ~6 s those imports cost; the server itself is started
with the secrets removed from its environment. The parent waits on process exit and reads
the structured result file; it never reads log text for control flow and never executes
generated code itself. A child that crashes, is killed, or outlives its wall-clock limit is
recorded as failed with the reason.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from eureka_lab import limits as sandbox_limits
from eureka_lab.store import JOB, RESULT, read_json, write_json

LOG = "worker.log"
PRELOAD = ["eureka_lab._preload"]
"""Imported once by the fork server; every job inherits the imports."""

_context: Any = None


@contextlib.contextmanager
def _main_module_hidden() -> Any:
    """Keep multiprocessing from re-running the caller's ``__main__`` (a user's script,
    the CLI) in the fork server and in every child: jobs need only importable code."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
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
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
            with _main_module_hidden():
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


def _child_main(workdir: str, limits: sandbox_limits.Limits, env: dict[str, str]) -> None:
    """Runs in the forked child: own session, log file, environment and limits, then the job."""
    os.setsid()
    log = os.open(os.path.join(workdir, LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(env)
    sandbox_limits.preexec(limits, workdir)()
    from eureka_lab import worker

    code = worker.main([workdir])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@dataclass(frozen=True)
class Job:
    key: str
    workdir: Path
    payload: dict[str, Any]
    timeout: float


@dataclass
class _Running:
    job: Job
    proc: BaseProcess
    started: float = field(default_factory=time.monotonic)


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


def _log_tail(workdir: Path, chars: int = 2000) -> str:
    try:
        with open(workdir / LOG, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class LocalExecutor:
    """Child processes on this machine, one torch thread each."""

    def __init__(
        self,
        workers: int,
        limits: sandbox_limits.Limits | None = None,
        poll_seconds: float = 0.1,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.limits = limits or sandbox_limits.supported(sandbox_limits.Limits())
        self.poll_seconds = poll_seconds

    def describe(self) -> list[str]:
        """One line per isolation layer: what is active for children, and what is not."""
        caps = dict(sandbox_limits.capabilities())
        if self.limits.network:
            caps["network"] = "allowed by the executor's limits (network=True)"
        if not self.limits.drops and caps.get("privileges") is True:
            caps["privileges"] = "not requested (drop_privileges=False, or not running as root)"
        return sandbox_limits.describe(caps).splitlines()

    def _start(self, job: Job, running: list[_Running]) -> _Running:
        job.workdir.mkdir(parents=True, exist_ok=True)
        (job.workdir / RESULT).unlink(missing_ok=True)
        write_json(job.workdir / JOB, job.payload)
        sandbox_limits.prepare_workdir(job.workdir, self.limits)
        env = sandbox_limits.child_env(job.workdir, os.environ)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
        proc = fork_context().Process(
            target=_child_main,
            args=(str(job.workdir), self.limits, env),
            name=f"eureka-lab {job.key}",
            daemon=False,
        )
        run = _Running(job, proc)
        running.append(run)  # before start, so that an interrupt from here on kills it
        with _main_module_hidden():
            proc.start()
        return run

    @staticmethod
    def _kill(run: _Running) -> None:
        if run.proc.pid is None:  # interrupted before it started
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            run.proc.kill()
        run.proc.join()

    def _finish(self, run: _Running, timed_out: bool) -> dict[str, Any]:
        job = run.job
        seconds = round(time.monotonic() - run.started, 2)
        result = read_json(job.workdir / RESULT) if not timed_out else None
        if not isinstance(result, dict):  # the child owns its folder: never trust the shape
            result = None
        if result is None:
            reason = (
                f"timed out after {job.timeout:.0f} s (wall-clock limit)"
                if timed_out
                else _signal_reason(run.proc.exitcode)
            )
            result = {
                "ok": False,
                "status": "failed",
                "stage": job.payload.get("mode", "job"),
                "reason": reason,
                "log_tail": _log_tail(job.workdir),
            }
            write_json(job.workdir / RESULT, result)
        for key in ("reason", "traceback"):  # kept short whatever the child wrote
            if isinstance(result.get(key), str) and len(result[key]) > 4000:
                result[key] = result[key][:4000] + "... [cut]"
        result.setdefault("wall_seconds", seconds)
        return result

    def run(
        self,
        jobs: Sequence[Job],
        on_done: Callable[[Job, dict[str, Any]], None] | None = None,
        on_tick: Callable[[list[Job]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Run every job; return results by job key. Ctrl-C kills the children and re-raises."""
        pending = list(jobs)
        running: list[_Running] = []
        results: dict[str, dict[str, Any]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    self._start(pending.pop(0), running)
                time.sleep(self.poll_seconds)
                for run in list(running):
                    timed_out = False
                    if run.proc.exitcode is None:
                        if time.monotonic() - run.started <= run.job.timeout:
                            continue
                        timed_out = True
                        self._kill(run)
                    running.remove(run)
                    results[run.job.key] = self._finish(run, timed_out)
                    if on_done is not None:
                        on_done(run.job, results[run.job.key])
                if on_tick is not None:
                    on_tick([r.job for r in running])
        except BaseException:
            for run in running:
                self._kill(run)
            raise
        return results
