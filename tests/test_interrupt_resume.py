"""A run interrupted in the middle of an iteration, then resumed: killed with SIGKILL
(nothing finished is redone), stopped by Ctrl-C once (gracefully, naming the resume
command) or twice (at once)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from eureka_lab import load_run

from support.tasks import tiny_task_dict

SEEDS = """
import numpy as np


def height(obs, action, next_obs, info):
    components = {"height": 1.0 * np.sin(3 * next_obs[:, 0])}
    total = sum(components.values())
    return total, components


def speed(obs, action, next_obs, info):
    components = {"speed": 10.0 * np.abs(next_obs[:, 1])}
    total = sum(components.values())
    return total, components
"""


pytestmark = pytest.mark.slow


def write_task(folder: Path) -> Path:
    (folder / "seeds.py").write_text(SEEDS)
    raw = tiny_task_dict(seed_rewards=["seeds:height", "seeds:speed"])
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "eureka_lab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        text=True,
        **kw,
    )


def events(run: Path) -> list[dict]:
    out = []
    for line in (run / "events.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def test_sigkill_mid_iteration_then_resume(tmp_path):
    task = write_task(tmp_path)
    runs = tmp_path / "runs"
    args = ["run", str(task), "--llm", "offline", "--iterations", "2", "--samples", "3"]
    proc = cli(*args, "--workers", "2", "--runs-dir", str(runs))
    deadline = time.monotonic() + 240
    run = None
    while time.monotonic() < deadline:
        found = list(runs.glob("*/iter_00/cand_*/result.json"))
        if found:
            run = found[0].parents[2]
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    assert run is not None, "no candidate finished training in time"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = {p: p.stat().st_mtime_ns for p in run.glob("iter_*/cand_*/result.json")}
    answered = {p: p.stat().st_mtime_ns for p in (run / "llm").glob("*.json")}
    assert finished and answered
    before = len(events(run))

    shown = subprocess.run(
        [sys.executable, "-m", "eureka_lab.cli", "show", str(run)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "no summary yet" in shown.stdout

    # A run killed mid-iteration reads through the library API as it stands.
    killed = load_run(run)
    assert not killed.finished and killed.summary is None
    trained = [c for c in killed.candidates if c.status == "trained"]
    assert trained and all(c.fitness is not None and c.checkpoints for c in trained)
    assert all(c.code for c in killed.candidates if c.status in ("trained", "valid"))

    resumed = cli("resume", str(run))
    output, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, output
    assert (run / "summary.json").is_file()

    # Finished candidates were not re-trained, recorded answers not asked again.
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    for path, mtime in answered.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was asked again"
    retrained = {e["id"] for e in events(run)[before:] if e["event"] == "training_started"}
    done_before = {str(p.parent.relative_to(run)) for p in finished}
    assert not retrained & done_before
    # Every event line after the kill parses (a torn line is not glued to the next one).
    lines = (run / "events.jsonl").read_text().splitlines()
    assert sum(1 for line in lines[before:] if not line.startswith("{")) == 0
    done = load_run(run)
    assert done.finished and set(done.summary.final) == {"best", "human", "sparse"}
    assert done.best.id == done.summary.best


def _start_and_wait_for_training(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    task = write_task(tmp_path)
    runs = tmp_path / "runs"
    args = ["run", str(task), "--llm", "offline", "--iterations", "1", "--samples", "2"]
    proc = cli(*args, "--workers", "2", "--runs-dir", str(runs))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = [r for r in runs.glob("*") if (r / "events.jsonl").exists()]
        if started and any(e["event"] == "training_started" for e in events(started[0])):
            return proc, started[0]
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("training did not start in time")


def test_ctrl_c_once_stops_gracefully_and_resume_finishes(tmp_path):
    proc, run = _start_and_wait_for_training(tmp_path)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert f"eureka-lab resume {run}" in output
    shown = subprocess.run(
        [sys.executable, "-m", "eureka_lab.cli", "show", str(run)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    resumed = cli("resume", str(run))
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert (run / "summary.json").is_file()


def test_ctrl_c_twice_stops_at_once(tmp_path):
    proc, run = _start_and_wait_for_training(tmp_path)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode in (130, -signal.SIGINT)
    shown = subprocess.run(
        [sys.executable, "-m", "eureka_lab.cli", "show", str(run)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
