"""The executor: runs candidate jobs in child processes, at most ``workers`` at a time.

Each job is ``python -m eureka_lab.worker JOB_DIR`` under the sandbox's process limits. The
parent waits on process exit and reads the structured result file; it never reads log
text for control flow and never executes generated code itself. A child that crashes, is
killed, or outlives its wall-clock limit is recorded as failed with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eureka_lab import limits as sandbox_limits
from eureka_lab.store import JOB, RESULT, read_json, write_json

LOG = "worker.log"
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class Job:
    key: str
    workdir: Path
    payload: dict[str, Any]
    timeout: float


@dataclass
class _Running:
    job: Job
    proc: subprocess.Popen
    started: float = field(default_factory=time.monotonic)


def _signal_reason(code: int) -> str:
    if code >= 0:
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

    def _start(self, job: Job, running: list[_Running]) -> _Running:
        job.workdir.mkdir(parents=True, exist_ok=True)
        (job.workdir / RESULT).unlink(missing_ok=True)
        write_json(job.workdir / JOB, job.payload)
        sandbox_limits.prepare_workdir(job.workdir, self.limits)
        env = sandbox_limits.child_env(job.workdir, os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
        with open(job.workdir / LOG, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "eureka_lab.worker", str(job.workdir)],
                cwd=job.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=sandbox_limits.preexec(self.limits, job.workdir),
            )
            run = _Running(job, proc)
            running.append(run)  # at once, so that an interrupt from here on kills it
        return run

    @staticmethod
    def _kill(run: _Running) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()

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
                else _signal_reason(run.proc.returncode)
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
                    if run.proc.poll() is None:
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
