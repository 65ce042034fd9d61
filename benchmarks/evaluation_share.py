"""The evaluation's share of a candidate's time, before and after batched evaluation.

    python benchmarks/evaluation_share.py [--timesteps 100000] [--checkpoints 10]
        [--episodes 5] [half_cheetah hopper ...]

For each task: trains its first seed reward (loaded as candidate code is) with the task's
trainer for ``--timesteps`` steps, keeping the policy of each of ``--checkpoints``
checkpoints, as a training job does; then evaluates them as an evaluation job does
(every checkpoint on ``--episodes`` choosing episodes, the best again on as many held-out
episodes), twice: on Gymnasium's envs, a checkpoint at a time (before), and as rows of one
batch stepped in C (after). Prints the training loop's seconds, each evaluation's seconds,
and the evaluation's share of training plus evaluation. Both evaluations must give the
same scores (checked). One process, pinned to one core.

Target (issue 21): evaluation under 10% of a job's time.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np


def measure(name: str, timesteps: int, checkpoints: int, episodes: int) -> dict[str, Any]:
    from eureka_lab.evaluation.evaluator import evaluate
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.task.load import load_task
    from eureka_lab.trainers import Budget, task_trainer

    task = load_task(name)
    code = task.reward_source(task.seed_rewards[0])
    trainer = task_trainer(task)
    policies: dict[int, dict[str, np.ndarray]] = {}

    def report(stats: Any, arrays: dict[str, np.ndarray], state: Any = None) -> None:
        policies[stats.step] = arrays

    started = time.perf_counter()
    trained = trainer.train(
        task, lambda: load_reward(code), Budget(timesteps, 0, checkpoints), report
    )
    train_wall = time.perf_counter() - started
    out: dict[str, Any] = {"train": trained.seconds, "train_wall": train_wall, "n": len(policies)}
    simulator = _time_the_simulator()
    for label, batched in (("gymnasium", False), ("batched", True)):
        started = time.perf_counter()
        evaluated = evaluate(task, trainer, policies, episodes, batched=batched)
        out[label] = time.perf_counter() - started
        out[label + "_scores"] = [e.fitness for e in evaluated.checkpoints] + [
            evaluated.held_out.fitness if evaluated.held_out else None
        ]
        out[label + "_steps"] = sum(e.eval_length * e.eval_episodes for e in evaluated.checkpoints)
    out["simulator"] = simulator[0]
    return out


def _time_the_simulator() -> list[float]:
    """From now on, the seconds MujocoBatch's simulators spend in ``Batch.step`` (the
    batched evaluation's simulator time: training ran before)."""
    from eureka_lab.batched import mujoco as batched

    seconds = [0.0]
    made = batched.MujocoBatch.__init__

    class Timed:
        def __init__(self, batch: Any) -> None:
            self.batch = batch

        def step(self, *args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            self.batch.step(*args, **kwargs)
            seconds[0] += time.perf_counter() - started

        def __getattr__(self, name: str) -> Any:
            return getattr(self.batch, name)

    def timed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.batch = Timed(self.batch)

    batched.MujocoBatch.__init__ = timed_init  # type: ignore[method-assign]
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="*", default=["half_cheetah", "hopper"])
    ap.add_argument("--timesteps", type=int, default=100_000)
    ap.add_argument("--checkpoints", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=5)
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:1])
    import torch

    torch.set_num_threads(1)
    print(
        f"machine: {len(cores)} usable cores, pinned to core {cores[0]}; {time.ctime()}\n"
        f"{args.timesteps:,} training steps, {args.checkpoints} checkpoints x "
        f"{args.episodes} episodes (+ {args.episodes} held-out)"
    )
    for name in args.tasks:
        r = measure(name, args.timesteps, args.checkpoints, args.episodes)
        same = np.allclose(
            np.array(r["gymnasium_scores"], float), np.array(r["batched_scores"], float), atol=1e-9
        )
        print(
            f"\n{name}: training loop {r['train']:.1f} s ({r['n']} checkpoints); evaluation "
            f"of {r['batched_steps']:,.0f} choosing env steps + held-out:"
        )
        for label in ("gymnasium", "batched"):
            share = r[label] / (r["train"] + r[label])
            print(f"   {label:10} {r[label]:6.2f} s = {share:5.1%} of training + evaluation")
        floor = r["simulator"] / (r["train"] + r["batched"])
        print(
            f"   of which the simulator (batched) {r['simulator']:.2f} s = {floor:.1%}: the "
            "share no evaluation of these episodes goes below on one core"
        )
        print(
            f"   speed-up {r['gymnasium'] / r['batched']:.1f}x; the same scores on both paths: "
            f"{same}"
        )


if __name__ == "__main__":
    main()
