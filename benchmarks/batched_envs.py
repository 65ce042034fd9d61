"""Stepping speed of the eleven batched MuJoCo envs on ``mujoco.batch``, next to Gymnasium.

    python benchmarks/batched_envs.py [--envs 64] [--seconds 3] [Ant-v5 ...]

Prints, per env, env-steps/s (each ``frame_skip`` MuJoCo substeps) with random actions in
the action bounds, one thread:

- ``MujocoBatch``: the batched env a trainer steps, ``--envs`` simulations: the simulator
  and the definition's observation, reward, ends and ``info``, restarts (and the contact
  forces, for Ant and the humanoids);
- ``batch.step``: the same steps' time in ``mujoco.batch.Batch.step`` only (the
  simulator's own rate, on the states the batched env visits);
- ``Gymnasium``: one Gymnasium env, ``step``, and ``reset`` where an episode ends;

and the ratio of ``MujocoBatch`` to Gymnasium. Timings share the machine with whatever
else runs on it: compare numbers from one run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.batched.mujoco_envs import DEFINITIONS
from eureka_lab.task.model import Task


class _Timed:
    """A ``mujoco.batch.Batch`` that adds up the seconds its ``step`` takes."""

    def __init__(self, batch: Any) -> None:
        self.batch, self.seconds = batch, 0.0

    def step(self, **kwargs: Any) -> None:
        started = time.perf_counter()
        self.batch.step(**kwargs)
        self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch, name)


def rate(step: Callable[[int], None], seconds: float) -> tuple[int, float]:
    """(calls, elapsed seconds) of ``step(k)`` run for about ``seconds``."""
    k, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step(k)
        k += 1
    return k, time.perf_counter() - started


def measure(env_id: str, n: int, seconds: float) -> tuple[float, float, float]:
    """(MujocoBatch, its batch.step, Gymnasium) env-steps/s."""
    task = Task(name="bench", env_id=env_id, description="-", timesteps=1)
    batched = MujocoBatch(task, n, threads=1)
    batched.batch = timed = _Timed(batched.batch)
    batched.reset(0)
    space = batched.action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(space.low, space.high, (256, n, *space.shape)).astype(np.float32)
    calls, elapsed = rate(lambda k: batched.step(actions[k % 256]), seconds)
    env = task.make_env()
    env.reset(seed=0)

    def single(k: int) -> None:
        _, _, terminated, truncated, _ = env.step(actions[k % 256, 0])
        if terminated or truncated:
            env.reset()

    single_calls, single_elapsed = rate(single, seconds)
    return calls * n / elapsed, calls * n / timed.seconds, single_calls / single_elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_ids", nargs="*", default=[d.env_id for d in DEFINITIONS])
    parser.add_argument("--envs", type=int, default=64, help="simulations per batch")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    print(f"env-steps/s, 1 thread, {args.envs} simulations per batch")
    print(f"{'env':28} {'MujocoBatch':>12} {'batch.step':>11} {'Gymnasium':>10} {'ratio':>6}")
    for env_id in args.env_ids:
        whole, bare, single = measure(env_id, args.envs, args.seconds)
        print(f"{env_id:28} {whole:12.0f} {bare:11.0f} {single:10.0f} {whole / single:6.1f}")


if __name__ == "__main__":
    main()
