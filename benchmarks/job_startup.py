"""How long a candidate job takes to start and finish: a fresh interpreter per job (what
`python -m eureka_lab.worker` costs) against a fork of the executor's preloaded server.

    python benchmarks/job_startup.py [--jobs 4] [--timesteps 512]

Prints seconds per job for each way and their ratio, measured in one run on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eureka_lab.executor import Job, LocalExecutor, fork_context
from eureka_lab.store import JOB, write_json
from eureka_lab.task import task_from_dict
from eureka_lab.worker import job_payload

REWARD = """
import numpy as np

def compute_reward(obs, action, next_obs, info):
    height = np.sin(3 * next_obs[:, 0])
    return height, {"height": height}
"""


def payload(timesteps: int) -> dict:
    task = task_from_dict(
        {
            "name": "bench",
            "env_id": "MountainCar-v0",
            "description": "reach the flag",
            "timesteps": timesteps,
            "max_episode_steps": 50,
            "eval_episodes": 2,
            "checkpoints": 2,
            "ppo": {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1},
        }
    )
    spec = {"timesteps": timesteps, "seed": 0, "checkpoints": 2, "eval_episodes": 2}
    return job_payload("train", task, REWARD, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=512)
    args = parser.parse_args()
    job = payload(args.timesteps)
    root = Path(tempfile.mkdtemp(prefix="eureka-bench-"))

    fresh = []
    for i in range(args.jobs):
        folder = root / f"fresh{i}"
        folder.mkdir()
        write_json(folder / JOB, job)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "eureka_lab.worker", str(folder)], check=True)
        fresh.append(time.perf_counter() - started)

    started = time.perf_counter()
    fork_context()
    executor = LocalExecutor(1)
    executor.run([Job("warm", root / "warm", job, 600)])  # the server's one-time imports
    warmup = time.perf_counter() - started
    forked = []
    for i in range(args.jobs):
        started = time.perf_counter()
        executor.run([Job(f"fork{i}", root / f"fork{i}", job, 600)])
        forked.append(time.perf_counter() - started)

    f, k = statistics.median(fresh), statistics.median(forked)
    print(f"jobs: {args.jobs} x PPO {args.timesteps} steps on MountainCar (one worker)")
    print(f"fresh interpreter per job: median {f:.2f} s per job")
    print(
        f"forked from preloaded server: median {k:.2f} s per job (server start once {warmup:.2f} s)"
    )
    print(f"speed-up per job: {f / k:.1f}x")


if __name__ == "__main__":
    main()
