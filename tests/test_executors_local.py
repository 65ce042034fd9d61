"""The executor: child processes, at most ``workers`` at a time, outputs by key, progress as
events through a pipe of bounded frames, and failures (no result, a broken protocol, a
timeout, Ctrl-C) recorded or cleaned up."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace

import pytest
from safetensors.numpy import load

from eureka_lab.executors import channel as channel_mod
from eureka_lab.executors import child
from eureka_lab.executors import local as executor_mod
from eureka_lab.executors.base import Job
from eureka_lab.executors.channel import MAX_HEADER, Channel, ProtocolError, read_frames
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor, _signal_reason
from eureka_lab.isolation.limits import Limits
from eureka_lab.runs.records import CheckpointStats
from eureka_lab.task.load import task_from_dict
from eureka_lab.trainers.base import Resources

from support.tasks import tiny_task_dict

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
    """The processes the executor starts, in order, the jobs in flight at each start, and
    each job's scratch folder."""

    class Procs(list):
        slots: list[int]
        scratch: list[str]

    procs = Procs()
    procs.slots = []
    procs.scratch = []
    real_start = LocalExecutor._start

    def spy(self, job, running, wake, slot=0, gpu=None):
        real_start(self, job, running, wake, slot, gpu)
        procs.append(running[-1].proc)
        procs.slots.append(len(running))
        procs.scratch.append(str(running[-1].scratch))
        return None

    monkeypatch.setattr(LocalExecutor, "_start", spy)
    return procs


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# Child-side hooks. The executor pickles its Process target by reference and the job child
# is forked from the fork server, so a monkeypatch of ``worker.run_job`` in this process
# never reaches the child. Instead ``executor.main`` is patched (here) with a
# partial of ``_child_with``: in the child, where ``executor.main`` is the real one,
# it swaps ``worker.run_job`` for ``job`` and hands over to the real ``_child_main`` (own
# session, log, scratch folder, limits: everything but the job itself).


def _child_with(spec, conn, scratch, limits, env, allow_weak=False, cpus=(), gpu=False, *, job):
    from eureka_lab.executors import child as executor
    from eureka_lab.executors import job as worker

    worker.run_job = job
    executor.main(spec, conn, scratch, limits, env, allow_weak, cpus, gpu)


def _dies(spec, channel, confine):
    sys.stderr.write("last words before os._exit\n")
    sys.stderr.flush()
    os._exit(3)


def _reports_scratch(spec, channel, confine):
    channel.send("result", {"cwd": os.getcwd(), "files": sorted(os.listdir("."))})


def _reports_gpu(spec, channel, confine):
    started = time.monotonic()
    time.sleep(0.6)  # jobs sharing a GPU overlap meanwhile
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    channel.send("result", {"gpu": visible, "start": started, "end": time.monotonic()})


def _reports_cores(spec, channel, confine):
    time.sleep(0.5)  # the other job is running meanwhile
    channel.send("result", {"cpus": sorted(os.sched_getaffinity(0))})


def _breaks_protocol(spec, channel, confine, *, what):
    """A valid checkpoint frame, then one outside the protocol, then a hang: the executor
    must fail the job and kill it, not wait for it."""
    conn = channel.conn
    channel.send("checkpoint", {"step": 1})
    if what == "header":
        conn.send_bytes(b"x" * (MAX_HEADER + 1))
    elif what == "json":
        conn.send_bytes(b"{not json")
    elif what == "deep":
        conn.send_bytes(b"[" * 100_000)
    elif what == "shape":
        conn.send_bytes(b'{"kind": 1, "data": []}')
    elif what == "artefact":  # over the parent's MAX_ARTEFACT, which the test lowers
        channel.send("checkpoint", {"step": 2}, b"\x00" * 4096)
    channel.send("result", {"ok": True})  # after a broken frame: never read
    time.sleep(60)


def _with_job(monkeypatch, job):
    monkeypatch.setattr(child, "main", functools.partial(_child_with, job=job))


def test_jobs_run_at_most_workers_at_a_time(task, started):
    jobs = [_validate_job(task, f"job{i}") for i in range(3)]
    jobs.append(_validate_job(task, "bad", code=BAD))
    outputs = LocalExecutor(2, limits=LIMITS).run(jobs)
    assert max(started.slots) == 2  # both worker slots were used, never more
    assert len(started) == 4
    assert set(outputs) == {"job0", "job1", "job2", "bad"}
    for key in ("job0", "job1", "job2"):
        assert outputs[key].reason is None, outputs[key]
        assert outputs[key].result["ok"] is True, outputs[key]
        assert outputs[key].result["components"] == ["centered", "upright"]
        assert outputs[key].result["transitions"] == 4 * 32
    bad = outputs["bad"].result
    assert bad["ok"] is False and bad["stage"] == "validation"
    assert "shape" in bad["reason"]
    assert all(o.seconds > 0 for o in outputs.values())


def test_checkpoints_arrive_as_events_in_order(task):
    events = []
    job = _train_job(task, "t", timesteps=512, checkpoints=4)
    out = LocalExecutor(1, limits=LIMITS).run([job], on_event=events.append)["t"]
    assert out.result["ok"] is True and out.result["steps"] == 512, out
    assert out.result["components"] == ["centered", "upright"]
    assert [e.kind for e in events] == ["checkpoint"] * 4
    assert [e.data["step"] for e in events] == [128, 256, 384, 512]
    assert all(e.key == "t" for e in events)
    stats = [CheckpointStats.model_validate(e.data) for e in events]
    assert all(set(s.components) == {"centered", "upright"} for s in stats)
    policies = [load(e.artefact) for e in events]  # safetensors, never a pickle
    for arrays in policies:
        assert arrays.keys() == policies[0].keys()
        assert any(name.startswith("policy/") for name in arrays)
    assert any(not (policies[0][k] == policies[-1][k]).all() for k in policies[0])  # trained
    assert "fitness" not in events[-1].data and "fitness" not in out.result


def test_a_child_without_result_fails_naming_its_exit_with_its_log(task, monkeypatch):
    _with_job(monkeypatch, _dies)
    out = LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "x")])["x"]
    assert out.result is None
    assert out.reason == "the worker exited with status 3 without writing a result"
    assert "last words before os._exit" in out.log_tail


def test_an_invalid_task_fails_the_job_with_a_reason(task):
    spec = JobSpec("validate", {"name": "no env"}, GOOD)
    out = LocalExecutor(1, limits=LIMITS).run([Job("x", spec, 60.0)])["x"]
    assert out.reason is None, out  # the child reported the failure itself
    assert out.result["ok"] is False and out.result["stage"] == "job"
    assert out.result["reason"].startswith("ValidationError"), out.result


@pytest.mark.parametrize("what", ["header", "json", "deep", "shape", "artefact"])
def test_a_job_that_breaks_the_protocol_is_failed_and_killed(task, monkeypatch, started, what):
    monkeypatch.setattr(channel_mod, "MAX_ARTEFACT", 1024)  # the parent's reader only
    _with_job(monkeypatch, functools.partial(_breaks_protocol, what=what))
    events = []
    out = LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "g")], events.append)["g"]
    assert out.result is None
    assert out.reason.startswith("the job broke the protocol: "), out.reason
    assert out.seconds < 30
    assert [(e.kind, e.data) for e in events] == [("checkpoint", {"step": 1})]
    (proc,) = started
    assert proc.exitcode == -signal.SIGKILL  # killed, not left to sleep
    assert not os.path.exists(started.scratch[0])


def _frames_of(*messages):
    """What ``read_frames`` makes of ``messages`` written to a pipe (by a thread: a message
    may not fit in the pipe's buffer)."""
    reader, writer = multiprocessing.Pipe(duplex=False)

    def write():
        with contextlib.suppress(OSError):  # the reader gave up and closed its end
            for message in messages:
                writer.send_bytes(message)
        writer.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        return list(read_frames(reader))
    finally:
        reader.close()
        thread.join(10)


def test_read_frames_reads_what_the_channel_sends():
    reader, writer = multiprocessing.Pipe(duplex=False)
    ch = Channel(writer)
    ch.send("checkpoint", {"step": 1}, b"\x00" * 10)
    ch.send("k" * 100, {"ok": True})
    writer.close()
    frames = list(read_frames(reader))
    assert [(f.kind, f.data, f.artefact) for f in frames] == [
        ("checkpoint", {"step": 1}, b"\x00" * 10),
        ("k" * 64, {"ok": True}, None),  # kinds are cut to 64 characters
    ]
    sent = []
    with pytest.raises(ValueError):  # the child cannot send NaN (not JSON) either
        Channel(type("Conn", (), {"send_bytes": sent.append})()).send("x", {"v": float("nan")})
    assert sent == []


@pytest.mark.parametrize(
    "messages, words",
    [
        ([b"x" * 200_001], "header over 200000 bytes"),
        ([b"{not json"], "not valid JSON (JSONDecodeError)"),
        ([b"[" * 100_000], "not valid JSON"),
        ([b"[1, 2]"], "not {kind: str"),
        ([b'{"kind": 1, "data": {}}'], "not {kind: str"),
        ([b'{"kind": "x", "data": []}'], "not {kind: str"),
        ([b'{"kind": "x", "data": {}, "artefact": "5"}'], "not {kind: str"),
        ([b'{"kind": "x", "data": {}, "artefact": 5}'], "middle of a frame"),
        ([b'{"kind": "x", "data": {}, "artefact": 5}', b"y" * 51], "artefact over 50 bytes"),
        (
            [b'{"kind": "x", "data": {"pad": "%s"}, "artefact": null}' % (b"y" * 160_000)] * 2,
            "over 300000 bytes",
        ),
        ([b'{"kind": "x", "data": {}, "artefact": null}'] * 4, "over 3 frames"),
    ],
)
def test_read_frames_refuses_anything_outside_the_protocol(monkeypatch, messages, words):
    monkeypatch.setattr(channel_mod, "MAX_HEADER", 200_000)
    monkeypatch.setattr(channel_mod, "MAX_ARTEFACT", 50)
    monkeypatch.setattr(channel_mod, "MAX_TOTAL", 300_000)
    monkeypatch.setattr(channel_mod, "MAX_FRAMES", 3)
    with pytest.raises(ProtocolError, match=re.escape(words)):
        _frames_of(*messages)


def test_read_frames_reads_a_header_without_artefact_key():
    (frame,) = _frames_of(b'{"kind": "x", "data": {}}')
    assert (frame.kind, frame.data, frame.artefact) == ("x", {}, None)


@pytest.mark.parametrize("size", ["true", "-1", "3"])
def test_an_artefact_size_must_be_an_honest_count(size):
    with pytest.raises(ProtocolError):
        _frames_of(b'{"kind": "x", "data": {}, "artefact": ' + size.encode() + b"}", b"ab")


def test_the_job_runs_in_a_scratch_folder_removed_afterwards(task, monkeypatch, started):
    _with_job(monkeypatch, _reports_scratch)
    out = LocalExecutor(1, limits=LIMITS).run([_validate_job(task, "s")])["s"]
    cwd = out.result["cwd"]
    assert cwd == started.scratch[0]
    assert os.path.basename(cwd).startswith("eureka-job-")
    assert os.path.dirname(cwd) == tempfile.gettempdir()  # outside the project and run store
    assert {".cache", "job.log", "tmp"} <= set(out.result["files"])
    assert not os.path.exists(cwd)


def test_wall_timeout_kills_and_fails(task, started):
    out = LocalExecutor(1, limits=LIMITS).run([_train_job(task, "slow", timeout=1.0)])["slow"]
    assert out.result is None
    assert out.reason == "timed out after 1 s (wall-clock limit)"
    assert out.seconds < 30
    (proc,) = started
    assert proc.exitcode == -signal.SIGKILL
    assert _gone(proc.pid)
    assert not os.path.exists(started.scratch[0])


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
    assert not any(os.path.exists(folder) for folder in started.scratch)


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
from eureka_lab.executors.base import Job
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.executors.job import JobSpec
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


def test_cpu_slots_split_the_cores_without_overlap():
    assert executor_mod.cpu_slots(2, [0, 1, 2, 3]) == [(0, 1), (2, 3)]
    assert executor_mod.cpu_slots(3, [0, 1, 2, 3]) == [(0,), (1,), (2,)]
    assert executor_mod.cpu_slots(4, [4, 5]) == [(4,), (5,), (4,), (5,)]
    assert executor_mod.cpu_slots(1, [0, 1]) == [(0, 1)]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_parallel_jobs_are_pinned_to_their_own_cores(task, monkeypatch):
    _with_job(monkeypatch, _reports_cores)
    jobs = [_validate_job(task, f"j{i}") for i in range(4)]
    outputs = LocalExecutor(2, limits=LIMITS).run(jobs)
    cores = [tuple(outputs[f"j{i}"].result["cpus"]) for i in range(4)]
    slots = LocalExecutor(2, limits=LIMITS).slots
    assert all(c in slots for c in cores)
    assert set(cores[:2]) == set(slots)  # the two jobs in flight together never share a core


def test_gpu_placement_fits_shares_on_the_least_loaded_gpu():
    assert executor_mod.gpu_slot([0.0, 0.0], 0.5) == 0
    assert executor_mod.gpu_slot([0.5, 0.0], 0.5) == 1
    assert executor_mod.gpu_slot([0.75, 0.5], 0.5) == 1
    assert executor_mod.gpu_slot([0.75, 0.75], 0.5) is None
    assert executor_mod.gpu_slot([0.25, 0.25, 0.25, 0.25][:1] * 4, 0.75) == 0


def _overlap(outs):
    """The most jobs running at one moment, from their own start and end times."""
    spans = [(o.result["start"], o.result["end"]) for o in outs]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


def test_jobs_share_a_gpu_up_to_its_whole_and_see_only_their_own(task, monkeypatch):
    """Jobs asking for half a GPU: two at a time on one GPU although four workers are
    free, and each child sees only the GPU it was placed on (through the user's list)."""
    _with_job(monkeypatch, _reports_gpu)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    half = Resources(device="cpu", gpus=0.5)
    jobs = [replace(_validate_job(task, f"j{i}"), resources=half) for i in range(4)]
    one = LocalExecutor(4, limits=LIMITS, gpus=1).run(jobs)
    assert {o.result["gpu"] for o in one.values()} == {"3"}
    assert _overlap(one.values()) == 2
    two = LocalExecutor(4, limits=LIMITS, gpus=2).run(jobs)
    assert {o.result["gpu"] for o in two.values()} == {"3", "5"}
    assert _overlap(two.values()) == 4
    # a CPU job is never held back by GPU shares, and sees no GPU
    cpu = LocalExecutor(4, limits=LIMITS, gpus=1).run(
        [replace(j, resources=Resources()) for j in jobs]
    )
    assert {o.result["gpu"] for o in cpu.values()} == {""} and _overlap(cpu.values()) == 4
