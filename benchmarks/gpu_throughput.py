"""Throughput of the warp trainer (MuJoCo Warp + the lean torch PPO), on the GPU when Warp
sees one, else on Warp's CPU device (slow: there it is a correctness path, not a fast one).

    python benchmarks/gpu_throughput.py [--envs 4096] [--timesteps 2000000]
        [--iteration --samples 16 --iteration-timesteps 20000000]

Prints, for HalfCheetah and Hopper:
- env-steps/s of stepping alone (random actions, the task's observation and reward included);
- env-steps/s of PPO training with a generated reward (a task's seed reward, loaded as
  candidate code is, on tensors);
and with ``--iteration``, the wall time of one iteration of K candidates (the offline
backend's, one job each, one at a time on the one device) at the given budget. Without it,
the iteration's time is projected from the measured training rate, and says so.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any


def step_rate(task_name: str, envs: int, device: str, steps: int = 200) -> float:
    import torch

    from eureka_lab.batched.warp import WarpBatch
    from eureka_lab.task import load_task

    batch = WarpBatch(load_task(task_name), envs, device)
    batch.reset(0)
    low = torch.as_tensor(batch.action_space.low, device=batch.device)
    high = torch.as_tensor(batch.action_space.high, device=batch.device)
    actions = low + (high - low) * torch.rand(steps, envs, len(low), device=batch.device)
    batch.step(actions[0])
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for a in actions:
        batch.step(a)
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * envs / (time.perf_counter() - started)


def train_rate(task_name: str, envs: int, timesteps: int) -> dict[str, Any]:
    from eureka_lab.sandbox import load_reward
    from eureka_lab.task import Task, load_task
    from eureka_lab.trainers import Budget

    base = load_task(task_name)
    task = Task.model_validate({**base.model_dump(), "trainer": {"name": "warp", "n_envs": envs}})
    code = task.reward_source(task.seed_rewards[0])
    trainer = task.trainer.make()
    report = trainer.train(
        task,
        lambda namespace="numpy", device="cpu": load_reward(code, namespace, device),
        Budget(timesteps, 0, 2),
        lambda *a, **k: None,
    )
    return {"steps": report.steps, "seconds": report.seconds, "device": trainer.device_name}


def iteration(task_name: str, envs: int, samples: int, timesteps: int) -> float:
    from eureka_lab.backends import BackendSettings, make_backend
    from eureka_lab.loop import Loop, LoopConfig
    from eureka_lab.store import RunStore
    from eureka_lab.task import Task, load_task

    base = load_task(task_name)
    task = Task.model_validate({**base.model_dump(), "trainer": {"name": "warp", "n_envs": envs}})
    config = LoopConfig(iterations=1, samples=samples, timesteps=timesteps, workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(Path(tmp), "gpu", {"task": task.model_dump(mode="json")})
        seeds = tuple(task.reward_source(r) or "" for r in task.seed_rewards)
        loop = Loop(store, task, config, make_backend("offline", BackendSettings(seeds=seeds)))
        opening = loop._opening()
        started = time.perf_counter()
        loop.iteration(0, opening, None)
        return time.perf_counter() - started


def main() -> None:
    from eureka_lab.batched.warp import default_device

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=None, help="worlds (default: by device)")
    ap.add_argument("--timesteps", type=int, default=None, help="training budget measured")
    ap.add_argument("--iteration", action="store_true", help="run one iteration for real")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--iteration-timesteps", type=int, default=20_000_000)
    args = ap.parse_args()
    device = default_device()
    envs = args.envs or (4096 if device == "cuda" else 256)
    timesteps = args.timesteps or (20_000_000 if device == "cuda" else 100_000)
    print(f"device: {device}; {envs} worlds; training budget {timesteps:,}; {time.ctime()}")
    rates = {}
    for name in ("half_cheetah", "hopper"):
        sim = step_rate(name, envs, device)
        trained = train_rate(name, envs, timesteps)
        rate = trained["steps"] / trained["seconds"]
        rates[name] = rate
        print(
            f"{name}: stepping alone {sim:12,.0f} env-steps/s; PPO training with a generated "
            f"reward {rate:12,.0f} env-steps/s ({rate / sim:.0%} of stepping)"
        )
    k, budget = args.samples, args.iteration_timesteps
    if args.iteration:
        wall = iteration("half_cheetah", envs, k, budget)
        print(f"one iteration of K={k} at {budget:,} steps each (half_cheetah): {wall:,.0f} s")
    else:
        projected = k * budget / rates["half_cheetah"]
        print(
            f"one iteration of K={k} at {budget:,} steps each (half_cheetah), PROJECTED from the "
            f"training rate above (training only, one candidate at a time): {projected:,.0f} s; "
            "run with --iteration to measure it"
        )


if __name__ == "__main__":
    main()
