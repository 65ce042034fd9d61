"""The executor: child processes, at most ``workers`` at a time, outputs by key, progress as
events through a pipe of bounded frames, and failures (no result, a broken protocol, a
timeout, Ctrl-C) recorded or cleaned up."""

from __future__ import annotations

import functools
import glob
import multiprocessing
import os
import signal
import tempfile

import pytest
from safetensors.numpy import load

from eureka_lab import executor as executor_mod
from eureka_lab.channel import MAX_HEADER, Channel, ProtocolError, read_frames
from eureka_lab.executor import Job, LocalExecutor, _signal_reason
from eureka_lab.limits import Limits
from eureka_lab.task import task_from_dict
from eureka_lab.worker import JobSpec

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


def _validate_job(task, key, code=GOOD, timeout=120.0):
    return Job(key, JobSpec("validate", task.model_dump(mode="json"), code), timeout)


def _train_job(task, key, timesteps=10**7, timeout=120.0, checkpoints=2):
    spec = JobSpec(
        "train", task.model_dump(mode="json"), GOOD, timesteps=timesteps, checkpoints=checkpoints
    )
    return Job(key, spec, timeout)


@pytest.fixture
def started(monkeypatch):
    """The processes the executor starts, in order, and the jobs in flight at each start."""

    class Procs(list):
        slots: list[int]

    procs = Procs()
    procs.slots = []
    real_start = LocalExecutor._start

    def spy(self, job, running, wake):
        real_start(self, job, running, wake)
        procs.append(running[-1].proc)
        procs.slots.append(len(running))
        return None

    monkeypatch.setattr(LocalExecutor, "_start", spy)
    return procs


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_jobs_run_at_most_workers_at_a_time(task, started):
    jobs = [_validate_job(task, f"job{i}") for i in range(3)]
    jobs.append(_validate_job(task, "bad", code=BAD))
    outputs = LocalExecutor(2, limits=LIMITS).run(jobs)
    assert max(started.slots) == 2  # both worker slots were used, never more
    assert len(started) == 4
    assert set(outputs) == {"job0", "job1", "job2", "bad"}
    for key in ("job0", "job1", "job2"):
        assert outputs[key].result["ok"] is True, outputs[key]
        assert outputs[key].result["components"] == ["centered", "upright"]
    bad = outputs["bad"].result
    assert bad["ok"] is False and bad["stage"] == "validation"
    assert "shape" in bad["reason"]
    assert all(o.seconds > 0 for o in outputs.values())


def test_checkpoints_arrive_as_events_in_order(task):
    events = []
    job = _train_job(task, "t", timesteps=512, checkpoints=4)
    out = LocalExecutor(1, limits=LIMITS).run([job], on_event=events.append)["t"]
    assert out.result["ok"] is True and out.result["steps"] == 512, out
    assert [e.kind for e in events] == ["checkpoint"] * 4
    assert [e.data["step"] for e in events] == [128, 256, 384, 512]
    assert all(e.key == "t" for e in events)
    arrays = load(events[-1].artefact)  # safetensors, never a pickle
    assert any(name.startswith("policy/") for name in arrays)
    assert "fitness" not in events[-1].data and "fitness" not in out.result


def _exits_early(spec, conn, scratch, limits, env, allow_weak=False):
    os._exit(3)


def test_a_child_without_result_fails_naming_its_exit(task, monkeypatch):
    monkeypatch.setattr(executor_mod, "_child_main", _exits_early)
    out = LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "x")])["x"]
    assert out.result is None
    assert out.reason == "the worker exited with status 3 without writing a result"


def _garbage_child(spec, conn, scratch, limits, env, allow_weak=False, *, what):
    os.setsid()
    if what == "header":
        conn.send_bytes(b"x" * (MAX_HEADER + 1))
    elif what == "json":
        conn.send_bytes(b"[" * 100_000)
    elif what == "shape":
        conn.send_bytes(b'{"kind": 1, "data": []}')
    os._exit(0)


@pytest.mark.parametrize("what", ["header", "json", "shape"])
def test_a_job_that_breaks_the_protocol_fails(task, monkeypatch, what):
    monkeypatch.setattr(executor_mod, "_child_main", functools.partial(_garbage_child, what=what))
    out = LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "g")])["g"]
    assert out.result is None
    assert out.reason.startswith("the job broke the protocol"), out.reason


def test_read_frames_bounds_and_checks_every_frame():
    reader, writer = multiprocessing.Pipe(duplex=False)
    ch = Channel(writer)
    ch.send("checkpoint", {"step": 1}, b"\x00" * 10)
    ch.send("result", {"ok": True})
    writer.close()
    frames = list(read_frames(reader))
    assert [(f.kind, f.data, f.artefact) for f in frames] == [
        ("checkpoint", {"step": 1}, b"\x00" * 10),
        ("result", {"ok": True}, None),
    ]
    reader, writer = multiprocessing.Pipe(duplex=False)
    writer.send_bytes(b'{"kind": "x", "data": {}, "artefact": 5}')
    writer.close()  # promised an artefact, closed instead
    with pytest.raises(ProtocolError, match="middle of a frame"):
        list(read_frames(reader))


def test_the_scratch_folder_is_removed(task):
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "eureka-job-*")))
    LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "s")])
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "eureka-job-*")))
    assert after <= before


def test_wall_timeout_kills_and_fails(task, started):
    out = LocalExecutor(1, limits=LIMITS).run([_train_job(task, "slow", timeout=1.0)])["slow"]
    assert out.result is None
    assert out.reason == "timed out after 1 s (wall-clock limit)"
    (proc,) = started
    assert proc.exitcode == -signal.SIGKILL
    assert _gone(proc.pid)


def test_keyboard_interrupt_in_on_event_kills_children(task, started):
    jobs = [_train_job(task, f"long{i}", checkpoints=10**4) for i in range(3)]
    seen, alive = [], []

    def on_event(event):
        seen.append(event.key)
        if len(seen) == 3:
            alive.extend(p.exitcode is None for p in started)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LocalExecutor(2, limits=LIMITS).run(jobs, on_event=on_event)
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
import json, sys
from eureka_lab.executor import Job, LocalExecutor
from eureka_lab.worker import JobSpec
task = json.loads(sys.argv[1])
code = "def compute_reward(obs, action, next_obs, info):\\n    h = next_obs[:, 0]\\n    return h, {'h': h}\\n"
job = Job("a", JobSpec("validate", task, code), 60.0)
out = LocalExecutor(1).run([job])["a"]
print("OK" if out.result and out.result["ok"] else f"FAILED {out}", flush=True)
"""


def test_a_users_script_is_not_rerun_by_the_children(tmp_path, task):
    """multiprocessing would re-run __main__ in the fork server and in each child."""
    import json
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(SCRIPT_WITHOUT_MAIN_GUARD)
    out = subprocess.run(
        [sys.executable, str(script), json.dumps(task.model_dump(mode="json"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.count("SCRIPT BODY RUNS") == 1, out.stdout + out.stderr
    assert "OK" in out.stdout, out.stdout + out.stderr
