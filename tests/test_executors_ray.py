"""The Ray executor against a real Ray head on 127.0.0.1: a small iteration through the loop,
and a worker killed in the middle of a job (retried once, the job completes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from eureka_lab.backends.scripted import ScriptedBackend  # noqa: E402
from eureka_lab.executors.base import Job  # noqa: E402
from eureka_lab.executors.job import JobSpec  # noqa: E402
from eureka_lab.executors.ray import RayExecutor  # noqa: E402
from eureka_lab.loop.loop import Loop  # noqa: E402
from eureka_lab.runs.config import LoopConfig  # noqa: E402
from eureka_lab.runs.store import RunStore  # noqa: E402
from eureka_lab.task.load import task_from_dict  # noqa: E402

from support.answers import good  # noqa: E402
from support.tasks import tiny_task_dict  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """`ray start --head` on loopback, stopped afterwards."""
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    yield f"127.0.0.1:{port}"
    ray.shutdown()
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)


def test_a_small_iteration_runs_on_the_cluster(head, tmp_path):
    task = task_from_dict(tiny_task_dict())
    store = RunStore.create(tmp_path, "ray", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=1,
        samples=2,
        workers=2,
        final_seeds=1,
        executor="ray",
        executor_options={"address": head},
    )
    backend = ScriptedBackend(responses=[good(1.0), good(2.0)])
    loop = Loop(store, task, config, backend)
    assert isinstance(loop.executor, RayExecutor)
    summary = loop.run()
    assert summary.best in ("iter_00/cand_00", "iter_00/cand_01")
    for cid in ("iter_00/cand_00", "iter_00/cand_01"):
        result = store.result(cid)
        assert result.status == "trained" and result.fitness is not None
        # Checkpoints and policies came back through the executor seam.
        assert [c.step for c in store.checkpoints(cid)] == [256, 512]
        assert store.policy(cid) is not None
    layers = next(e for e in store.events() if e["event"] == "sandbox")["layers"]
    assert layers[0].startswith("ray: 1 node(s)") and any("seccomp" in x for x in layers)


def _ray_task_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ray::run_on_node" in cmd:
                pids.append(int(entry))
    return pids


def test_a_worker_killed_mid_job_is_retried_once(head):
    task = task_from_dict(tiny_task_dict())
    spec = JobSpec(
        "train",
        task.model_dump(mode="json"),
        good(1.0).split("```python\n")[1].split("```")[0],
        timesteps=20_000,
        checkpoints=4,
    )
    executor = RayExecutor(1, address=head)
    killed: list[int] = []

    def kill_first_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            pids = _ray_task_pids()
            if pids:
                time.sleep(2.0)  # mid-job: past start-up, before the end
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.1)

    threading.Thread(target=kill_first_worker, daemon=True).start()
    out = executor.run([Job("long", spec, 300.0)])["long"]
    assert killed, "the test never found the Ray worker to kill"
    assert out.result is not None and out.result["ok"] is True, out
    assert out.result["steps"] >= 20_000  # the whole budget, after the retry
