"""Throughput of the warp trainer (MuJoCo Warp + the lean torch PPO), on the GPU when Warp
sees one, else on Warp's CPU device (slow: there it is a correctness path, not a fast one).

    python benchmarks/gpu_throughput.py [--envs 4096] [--timesteps 2000000]
        [--iteration --samples 16 --iteration-timesteps 20000000]

Prints, for HalfCheetah and Hopper:
- env-steps/s of stepping alone (random actions, the task's observation and reward included);
- env-steps/s of PPO training with a generated reward (a task's seed reward, loaded as
  candidate code is, on tensors);
- several candidates trained at once on the one device, through the real executor and
  sandboxed jobs (``--together K``): as K separate processes, ``--per-gpu`` of them at
  once, each held to its memory share; and as one process training all K, each on its
  own worlds of one batch (the trainer's ``group``);
and with ``--iteration``, the wall time of one iteration of K candidates (the offline
backend's, ``--per-gpu`` processes at once, ``--group`` candidates each) at the given budget.
Without it, the iteration's time is projected from the measured training rate, and says so.
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
    from eureka_lab.task.load import load_task

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
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.task.load import load_task
    from eureka_lab.task.model import Task
    from eureka_lab.trainers import Budget, task_trainer

    base = load_task(task_name)
    task = Task.model_validate({**base.model_dump(), "trainer": {"name": "warp", "n_envs": envs}})
    code = task.reward_source(task.seed_rewards[0])
    trainer = task_trainer(task)
    report = trainer.train(
        task,
        lambda namespace="numpy", device="cpu": load_reward(code, namespace, device),
        Budget(timesteps, 0, 2),
        lambda *a, **k: None,
    )
    return {"steps": report.steps, "seconds": report.seconds, "device": trainer.device_name}


def together(task_name: str, envs: int, k: int, timesteps: int, per_gpu: int) -> dict[str, float]:
    """Wall seconds to train ``k`` candidates (the task's seed rewards in turn) as ``k``
    sandboxed jobs, ``per_gpu`` at once, and as one job training all ``k`` (a group)."""
    from eureka_lab.executors.base import Job
    from eureka_lab.executors.job import JobSpec
    from eureka_lab.executors.local import LocalExecutor
    from eureka_lab.task.load import load_task
    from eureka_lab.task.model import Task
    from eureka_lab.trainers import task_trainer

    base = load_task(task_name)
    trainer = {"name": "warp", "n_envs": envs, "per_gpu": per_gpu}
    task = Task.model_validate({**base.model_dump(), "trainer": trainer})
    codes = [task.reward_source(task.seed_rewards[i % len(task.seed_rewards)]) for i in range(k)]
    resources = task_trainer(task).resources
    raw = task.model_dump(mode="json")
    timeout = 3600.0

    def spec(**kw: Any) -> JobSpec:
        return JobSpec("train", raw, timesteps=timesteps, checkpoints=1, **kw)

    out = {}
    for form, jobs, workers in (
        (
            "apart",
            [Job(f"c{i}", spec(code=c), timeout, resources) for i, c in enumerate(codes)],
            per_gpu,
        ),
        ("group", [Job("g", spec(group=tuple(codes)), timeout * k, resources)], 1),
    ):
        started = time.perf_counter()
        outputs = LocalExecutor(workers).run(jobs)
        out[form] = time.perf_counter() - started
        for key, o in outputs.items():
            results = (o.result or {}).get("members", [o.result])
            if not all(r and r.get("ok") for r in results):
                raise SystemExit(f"{form} job {key} failed: {o.reason or o.result}")
    return out


def iteration(
    task_name: str, envs: int, samples: int, timesteps: int, per_gpu: int, group: int
) -> float:
    from eureka_lab.backends import BackendSettings, make_backend
    from eureka_lab.loop.loop import Loop
    from eureka_lab.runs.config import LoopConfig
    from eureka_lab.runs.store import RunStore
    from eureka_lab.task.load import load_task
    from eureka_lab.task.model import Task

    base = load_task(task_name)
    trainer = {"name": "warp", "n_envs": envs, "per_gpu": per_gpu, "group": group}
    task = Task.model_validate({**base.model_dump(), "trainer": trainer})
    config = LoopConfig(iterations=1, samples=samples, timesteps=timesteps, workers=per_gpu)
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
    ap.add_argument("--together", type=int, default=4, help="candidates trained at once")
    ap.add_argument("--together-timesteps", type=int, default=None)
    ap.add_argument("--per-gpu", type=int, default=None, help="processes at once on the device")
    ap.add_argument("--group", type=int, default=1, help="candidates per process (iteration)")
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
    import os

    per_gpu = args.per_gpu or (4 if device == "cuda" else len(os.sched_getaffinity(0)))
    k, each = args.together, args.together_timesteps or timesteps // 4
    walls = together("half_cheetah", envs, k, each, per_gpu)
    for form, wall in walls.items():
        how = (
            f"{k} processes, {per_gpu} at once"
            if form == "apart"
            else f"one process, {k} groups of {envs} worlds"
        )
        print(
            f"{k} candidates x {each:,} steps together (half_cheetah), {how}: {wall:,.1f} s "
            f"wall, {k * each / wall:,.0f} env-steps/s in all (sandboxed jobs, start-up included)"
        )
    k, budget = args.samples, args.iteration_timesteps
    if args.iteration:
        wall = iteration("half_cheetah", envs, k, budget, per_gpu, args.group)
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
