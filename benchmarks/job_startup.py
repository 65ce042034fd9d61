"""How long a candidate job takes to start and finish: a fresh interpreter per job against
a fork of the executor's preloaded server (what LocalExecutor does; the forked job also
confines itself with Landlock and seccomp).

    python benchmarks/job_startup.py [--jobs 4] [--timesteps 512]

Prints seconds per job for each way and their ratio, measured in one run on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict

from eureka_lab.executors.base import Job
from eureka_lab.executors.child import fork_context
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.task.load import task_from_dict

FRESH = """
import json, sys
from eureka_lab.executors.job import JobSpec, run_job

class Discard:
    def send(self, kind, data, artefact=None):
        pass

run_job(JobSpec(**json.loads(sys.argv[1])), Discard(), lambda: None)
"""

REWARD = """
import numpy as np

def compute_reward(obs, action, next_obs, info):
    height = np.sin(3 * next_obs[:, 0])
    return height, {"height": height}
"""


def payload(timesteps: int) -> JobSpec:
    task = task_from_dict(
        {
            "name": "bench",
            "env_id": "MountainCar-v0",
            "description": "reach the flag",
            "timesteps": timesteps,
            "max_episode_steps": 50,
            "eval_episodes": 2,
            "checkpoints": 2,
            "trainer": {
                "name": "sb3",
                "n_envs": 2,
                "n_steps": 64,
                "batch_size": 64,
                "n_epochs": 1,
            },
        }
    )
    return JobSpec(
        "train", task.model_dump(mode="json"), REWARD, timesteps=timesteps, checkpoints=2
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=512)
    args = parser.parse_args()
    spec = payload(args.timesteps)

    fresh = []
    for _ in range(args.jobs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", FRESH, json.dumps(asdict(spec))], check=True)
        fresh.append(time.perf_counter() - started)

    started = time.perf_counter()
    fork_context()
    executor = LocalExecutor(1)
    executor.run([Job("warm", spec, 600)])  # the server's one-time imports, and the probe
    warmup = time.perf_counter() - started
    forked = []
    for i in range(args.jobs):
        started = time.perf_counter()
        out = executor.run([Job(f"fork{i}", spec, 600)])[f"fork{i}"]
        assert out.result and out.result["ok"], out
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
