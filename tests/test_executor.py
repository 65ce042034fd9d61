"""The executor: child processes, at most ``workers`` at a time, results by key, and
failures (no result, timeout, Ctrl-C) recorded or cleaned up."""

from __future__ import annotations

import os
import signal

import pytest

from eureka_lab import executor as executor_mod
from eureka_lab.executor import Job, LocalExecutor, _signal_reason
from eureka_lab.limits import Limits
from eureka_lab.store import JOB, RESULT, read_json
from eureka_lab.task import task_from_dict
from eureka_lab.worker import job_payload

from conftest import tiny_task_dict

# Keep the uid (tmp_path may sit where 'nobody' cannot go) and the network (no namespace).
LIMITS = Limits(drop_privileges=False, network=True)

GOOD = """
import numpy as np

def compute_reward(obs, action, next_obs, info):
    upright = np.cos(next_obs[:, 2])
    centered = -0.1 * np.abs(next_obs[:, 0])
    return upright + centered, {"upright": upright, "centered": centered}
"""

BAD = """
import numpy as np

def compute_reward(obs, action, next_obs, info):
    return np.ones(3), {"a": np.ones(3)}
"""


@pytest.fixture(scope="module")
def task():
    return task_from_dict(tiny_task_dict(name="cp", env_id="CartPole-v1", description="balance"))


def _validate_job(tmp_path, task, key, code=GOOD, timeout=120.0):
    return Job(key, tmp_path / key, job_payload("validate", task, code), timeout)


def _train_job(tmp_path, task, key, timesteps=10**7, timeout=120.0):
    spec = {"timesteps": timesteps, "seed": 0, "checkpoints": 2, "eval_episodes": 2}
    return Job(key, tmp_path / key, job_payload("train", task, GOOD, spec), timeout)


@pytest.fixture
def started(monkeypatch):
    """The processes the executor starts, in order."""

    class Procs(list):
        slots: list[int]

    procs = Procs()
    procs.slots = []
    real_start = LocalExecutor._start

    def spy(self, job, running):
        run = real_start(self, job, running)
        procs.append(run.proc)
        procs.slots.append(len(running))  # jobs in flight right after this start
        return run

    monkeypatch.setattr(LocalExecutor, "_start", spy)
    return procs


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_jobs_run_at_most_workers_at_a_time(tmp_path, task, started):
    jobs = [_validate_job(tmp_path, task, f"job{i}") for i in range(3)]
    jobs.append(_validate_job(tmp_path, task, "bad", code=BAD))
    running_counts, alive_counts, done = [], [], []

    def on_tick(running):
        running_counts.append(len(running))
        alive_counts.append(sum(p.exitcode is None for p in started))

    results = LocalExecutor(2, limits=LIMITS, poll_seconds=0.05).run(
        jobs, on_done=lambda job, res: done.append(job.key), on_tick=on_tick
    )
    assert max(started.slots) == 2  # both worker slots were used
    assert max(running_counts) <= 2 and max(alive_counts) <= 2
    assert len(started) == 4
    assert set(results) == {"job0", "job1", "job2", "bad"} == set(done)
    for key in ("job0", "job1", "job2"):
        assert results[key]["ok"] is True, results[key]
        assert results[key]["components"] == ["centered", "upright"]
        assert read_json(tmp_path / key / RESULT)["ok"] is True
        assert read_json(tmp_path / key / JOB)["mode"] == "validate"
    bad = results["bad"]
    assert bad["ok"] is False and bad["stage"] == "validation"
    assert "shape" in bad["reason"]
    assert all(r["wall_seconds"] > 0 for r in results.values())


def test_child_without_result_fails_naming_exit_status(tmp_path):
    job = Job("broken", tmp_path / "broken", {"mode": "validate"}, 60.0)  # no task: crashes
    results = LocalExecutor(1, limits=LIMITS, poll_seconds=0.05).run([job])
    res = results["broken"]
    assert res["ok"] is False and res["status"] == "failed" and res["stage"] == "validate"
    assert res["reason"] == "the worker exited with status 1 without writing a result"
    assert "KeyError" in res["log_tail"]
    assert read_json(tmp_path / "broken" / RESULT) == {
        k: v for k, v in res.items() if k != "wall_seconds"
    }


def test_stale_result_is_not_reused(tmp_path):
    job = Job("stale", tmp_path / "stale", {"mode": "validate"}, 60.0)
    job.workdir.mkdir()
    (job.workdir / RESULT).write_text('{"ok": true}')
    res = LocalExecutor(1, limits=LIMITS, poll_seconds=0.05).run([job])["stale"]
    assert res["ok"] is False


def test_wall_timeout_kills_and_fails(tmp_path, task, started):
    job = _train_job(tmp_path, task, "slow", timeout=1.0)
    res = LocalExecutor(1, limits=LIMITS, poll_seconds=0.05).run([job])["slow"]
    assert res["ok"] is False and res["stage"] == "train"
    assert res["reason"] == "timed out after 1 s (wall-clock limit)"
    (proc,) = started
    assert proc.exitcode == -signal.SIGKILL
    assert _gone(proc.pid)


def test_keyboard_interrupt_in_on_tick_kills_children(tmp_path, task, started):
    jobs = [_train_job(tmp_path, task, f"long{i}") for i in range(3)]
    ticks, alive = [], []

    def on_tick(running):
        ticks.append(len(running))
        if len(ticks) == 3:
            alive.extend(p.exitcode is None for p in started)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LocalExecutor(2, limits=LIMITS, poll_seconds=0.05).run(jobs, on_tick=on_tick)
    assert alive == [True, True]  # both children were running when Ctrl-C came
    assert len(started) == 2  # the third never started
    for proc in started:
        assert proc.exitcode is not None
        assert _gone(proc.pid)
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # nothing left in the child's session either


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0, limits=LIMITS)


@pytest.mark.parametrize(
    "code, words",
    [
        (3, "exited with status 3 without writing a result"),
        (-signal.SIGKILL, "killed (out of memory, or a resource limit) (SIGKILL)"),
        (-signal.SIGSEGV, "segmentation fault (SIGSEGV)"),
        (-signal.SIGXCPU, "CPU-time limit (SIGXCPU)"),
        (-signal.SIGTERM, "was terminated (SIGTERM)"),
    ],
)
def test_signal_reason(code, words):
    assert words in _signal_reason(code)


def test_log_tail_missing_is_empty(tmp_path):
    assert executor_mod._log_tail(tmp_path) == ""


SCRIPT_WITHOUT_MAIN_GUARD = """
print("SCRIPT BODY RUNS", flush=True)
import json, pathlib, sys
from eureka_lab.executor import Job, LocalExecutor
task = json.loads(sys.argv[1])
code = "def compute_reward(obs, action, next_obs, info):\\n    h = next_obs[:, 0]\\n    return h, {'h': h}\\n"
folder = pathlib.Path(sys.argv[2])
job = Job("a", folder, {"mode": "validate", "task": task, "code": code}, 60.0)
print("OK" if LocalExecutor(1).run([job])["a"]["ok"] else "FAILED", flush=True)
"""


def test_a_users_script_is_not_rerun_by_the_children(tmp_path, task):
    """multiprocessing would re-run __main__ in the fork server and in each child."""
    import json
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(SCRIPT_WITHOUT_MAIN_GUARD)
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            json.dumps(task.model_dump(mode="json")),
            str(tmp_path / "job"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.count("SCRIPT BODY RUNS") == 1, out.stdout + out.stderr
    assert "OK" in out.stdout, out.stdout + out.stderr
