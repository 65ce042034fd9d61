"""Throughput of training candidates, measured in one run on one machine.

    python benchmarks/throughput.py [--timesteps 200000] [--iteration-timesteps 100000]

Prints:

1. the raw simulator: HalfCheetah-v5's env-steps/s (5 MuJoCo substeps each) stepped by
   ``mujoco.batch`` with random controls, on one core and on all cores; Gymnasium's env for
   reference;
2. PPO training a candidate with a generated reward (a task's seed reward, loaded through
   the sandbox's loader as candidate code is), for HalfCheetah and Hopper: env-steps/s of
   one process pinned to one core, and summed over one process per core; the ratio to the
   raw simulator on the same cores; the reward function's share of the training loop's time;
3. one iteration of K=8 candidates (the offline backend's, same seed) with 1 worker against
   one worker per core: wall time, and where the time went;
4. successive halving against full training on those 8 candidates at the budget of the
   issue's example run (1M steps each): env steps spent, and which candidate each chose;
5. each of Gymnasium's eleven MuJoCo v5 envs, side by side on one core: the raw simulator
   (``mujoco.batch`` stepping ``--per-env-envs`` simulations with random controls, each
   restarted where its episode ends as training restarts it; only ``Batch.step`` timed)
   and the ppo trainer training a generated reward (``GENERIC``, loaded as candidate code
   is) on the env-id task (``eureka-lab run ENV_ID``) with as many envs; the ratio, and
   the simulator's share of the training loop (timed inside it). ``--per-env-only`` runs
   just this part.

Targets (issue "throughput"): training at least 50% of the raw simulator's rate on the same
cores; the reward at most 5% of step time; halving choosing the same best with at most 50%
of the env steps. Issue 21: Walker2d-v5 trains at 40% of the raw simulator's rate or more.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CORES = sorted(os.sched_getaffinity(0))


def raw_rate(env_id: str, cores: list[int], nsim: int = 64, seconds: float = 4.0) -> float:
    """Env-steps/s of the bare simulator on ``cores`` (a thread per core)."""
    import mujoco.batch

    from eureka_lab.task.envs import make_env

    os.sched_setaffinity(0, cores)
    env = make_env(env_id)
    core = env.unwrapped
    batch = mujoco.batch.Batch(core.model, nsim=nsim, nthread=len(cores))
    batch.reset()
    ctrl = batch.bind("ctrl")
    low, high = core.model.actuator_ctrlrange.T
    rng = np.random.default_rng(0)
    actions = rng.uniform(low, high, (256, nsim, len(low)))
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        ctrl[:] = actions[steps % 256]
        batch.step(nstep=core.frame_skip)
        steps += 1
    rate = steps * nsim / (time.perf_counter() - started)
    os.sched_setaffinity(0, CORES)
    return rate


def gym_rate(env_id: str, seconds: float = 3.0) -> float:
    from eureka_lab.task.envs import make_env

    os.sched_setaffinity(0, CORES[:1])
    env = make_env(env_id)
    env.reset(seed=0)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
        steps += 1
    os.sched_setaffinity(0, CORES)
    return steps / (time.perf_counter() - started)


def _train(task_name: str, timesteps: int, seed: int, core: int, out: Any) -> None:
    """In a process pinned to ``core``: train the task's first seed reward, loaded as
    candidate code is, timing the reward's share of the loop."""
    os.sched_setaffinity(0, [core])
    from eureka_lab.reward import applied as wrapper
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.task.load import load_task
    from eureka_lab.trainers import Budget, task_trainer

    task = load_task(task_name)
    code = task.reward_source(task.seed_rewards[0])
    in_reward = [0.0]
    batched = wrapper.RewardComputer.batched

    def timed(self: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return batched(self, *args)
        finally:
            in_reward[0] += time.perf_counter() - started

    wrapper.RewardComputer.batched = timed  # type: ignore[method-assign]
    trainer = task_trainer(task)
    report = trainer.train(
        task, lambda: load_reward(code), Budget(timesteps, seed, 2), lambda *a, **k: None
    )
    out.put(
        {
            "steps": report.steps,
            "seconds": report.seconds,
            "reward_seconds": in_reward[0],
            "envs": trainer.envs_for(timesteps),
        }
    )


def train_rate(task_name: str, timesteps: int, processes: int) -> list[dict[str, Any]]:
    """``processes`` trainings at once, each pinned to its own core."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_train, args=(task_name, timesteps, i, CORES[i], out))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results


GENERIC = """
import numpy as np


def compute_reward(obs, action, next_obs, info):
    components = {
        "first": 0.1 * next_obs[:, 0],
        "effort": -0.01 * np.sum(action**2, axis=1),
    }
    return sum(components.values()), components
"""
"""A reward for any env: what the model writes at the least (a term of the observation and
an effort cost), so the training loop's own cost shows."""


class _TimedBatch:
    """A ``mujoco.batch.Batch`` that adds up the seconds its ``step`` takes."""

    def __init__(self, batch: Any) -> None:
        self.batch, self.seconds = batch, 0.0

    def step(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        self.batch.step(*args, **kwargs)
        self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch, name)


def _env_task(env_id: str, n_envs: int) -> Any:
    from eureka_lab.task.load import load_task
    from eureka_lab.trainers.default import with_trainer

    task = load_task(env_id, description="-")
    return with_trainer(task, {"name": "ppo", "n_envs": n_envs})[0]


def _per_env(env_id: str, n_envs: int, timesteps: int, seconds: float, core: int, out: Any) -> None:
    """In a process pinned to ``core``: the raw simulator's rate, then the ppo trainer's
    with the simulator timed inside it."""
    os.sched_setaffinity(0, [core])
    import torch

    from eureka_lab.batched import mujoco as batched
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.trainers import Budget, task_trainer

    torch.set_num_threads(1)
    task = _env_task(env_id, n_envs)
    env = batched.MujocoBatch(task, n_envs, threads=1)
    env.batch = timed = _TimedBatch(env.batch)
    env.reset(0)
    space = env.action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(space.low, space.high, (256, n_envs, *space.shape))
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.step(actions[calls % 256])
        calls += 1
    raw = calls * n_envs / timed.seconds
    timers: list[_TimedBatch] = []
    made = batched.MujocoBatch.__init__

    def timed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self.batch = _TimedBatch(self.batch)
        timers.append(self.batch)

    batched.MujocoBatch.__init__ = timed_init  # type: ignore[method-assign]
    report = task_trainer(task).train(
        task, lambda: load_reward(GENERIC), Budget(timesteps, 0, 1), lambda *a, **k: None
    )
    out.put(
        {
            "raw": raw,
            "train": report.steps / report.seconds,
            "physics_share": sum(t.seconds for t in timers) / report.seconds,
        }
    )


def per_env(n_envs: int, timesteps: int, seconds: float) -> None:
    ctx = mp.get_context("spawn")
    print(f"{'env':28} {'raw sim':>9} {'PPO training':>13} {'ratio':>6} {'sim in training':>16}")
    from eureka_lab.batched.mujoco_envs import DEFINITIONS

    for env_id in (d.env_id for d in DEFINITIONS):
        out = ctx.Queue()
        proc = ctx.Process(
            target=_per_env, args=(env_id, n_envs, timesteps, seconds, CORES[0], out)
        )
        proc.start()
        r = out.get()
        proc.join()
        print(
            f"{env_id:28} {r['raw']:9,.0f} {r['train']:13,.0f} {r['train'] / r['raw']:6.0%} "
            f"{r['physics_share']:16.0%}"
        )


def iteration(
    task_name: str, timesteps: int, workers: int, schedule: str, root: Path
) -> dict[str, Any]:
    """One iteration of K=8 offline candidates; wall time and what each candidate spent."""
    from eureka_lab.backends import BackendSettings, make_backend
    from eureka_lab.loop.loop import Loop
    from eureka_lab.runs.config import LoopConfig
    from eureka_lab.runs.store import RunStore
    from eureka_lab.task.load import load_task

    task = load_task(task_name)
    config = LoopConfig(
        iterations=1, samples=8, timesteps=timesteps, workers=workers, schedule=schedule
    )
    store = RunStore.create(root, f"{schedule}-{workers}", {"task": task.model_dump(mode="json")})
    settings = BackendSettings(
        seed=0, seeds=tuple(task.reward_source(r) or "" for r in task.seed_rewards)
    )
    loop = Loop(store, task, config, make_backend("offline", settings))
    opening = loop._opening()
    started = time.perf_counter()
    record = loop.iteration(0, opening, None)
    wall = time.perf_counter() - started
    cands = store.candidates(0)
    results = [store.result(c.id) for c in cands]
    trained = [r for r in results if r is not None and r.status == "trained"]
    return {
        "wall": wall,
        "best": record.best,
        "best_fitness": record.best_fitness,
        "trained": len(trained),
        "spent": sum(r.spent for r in trained),
        "train_seconds": sum(r.seconds for r in trained),
        "eval_seconds": sum(r.wall_seconds for r in trained),
        "fitness": {c.id: (r.fitness if r else None) for c, r in zip(cands, results, strict=True)},
        "stopped": {c.id: r.stopped_at for c, r in zip(cands, results, strict=True) if r},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--timesteps",
        type=int,
        nargs="+",
        default=[200_000, 1_000_000],
        help="budgets of part 2 (the task's default, and the issue's example run)",
    )
    ap.add_argument(
        "--iteration-timesteps", type=int, default=100_000, help="budget per candidate in 3"
    )
    ap.add_argument(
        "--halving-timesteps", type=int, default=1_000_000, help="budget per candidate in 4"
    )
    ap.add_argument("--task", default="half_cheetah", help="the task of parts 3 and 4")
    ap.add_argument("--skip-iteration", action="store_true")
    ap.add_argument("--per-env-only", action="store_true", help="only part 5")
    ap.add_argument("--per-env-envs", type=int, default=32, help="simulations per env in 5")
    ap.add_argument(
        "--per-env-timesteps", type=int, default=40_960, help="training steps per env in 5"
    )
    ap.add_argument("--per-env-seconds", type=float, default=3.0, help="raw stepping in 5")
    args = ap.parse_args()
    n = len(CORES)
    print(f"machine: {n} usable cores {CORES}, {os.cpu_count()} CPUs; {time.ctime()}")
    if args.per_env_only:
        _per_env_part(args)
        return

    print("\n1. raw simulator (mujoco.batch, 64 sims, random controls)")
    raw1 = raw_rate("HalfCheetah-v5", CORES[:1])
    rawn = raw_rate("HalfCheetah-v5", CORES)
    print(f"   HalfCheetah-v5, 1 core:   {raw1:9,.0f} env-steps/s")
    print(f"   HalfCheetah-v5, {n} cores:  {rawn:9,.0f} env-steps/s")
    print(f"   (Gymnasium env, 1 core:  {gym_rate('HalfCheetah-v5'):9,.0f} env-steps/s)")
    raw_hopper = raw_rate("Hopper-v5", CORES[:1])
    print(
        f"   Hopper-v5, 1 core:        {raw_hopper:9,.0f} env-steps/s (random torques topple it: "
        "it lies in contact, the simulator's slow case)"
    )

    print("\n2. PPO training with a generated reward (training loop; the env count comes from")
    print("   the budget: 32 envs at 200k steps, 128 at 1M)")
    for timesteps in args.timesteps:
        for name, env_id in (("half_cheetah", "HalfCheetah-v5"), ("hopper", "Hopper-v5")):
            raw = raw1 if env_id == "HalfCheetah-v5" else raw_hopper
            (one,) = train_rate(name, timesteps, 1)
            rate1 = one["steps"] / one["seconds"]
            share = one["reward_seconds"] / one["seconds"]
            print(
                f"   {env_id}, {timesteps:,} steps, {one['envs']} envs: 1 process on 1 core "
                f"{rate1:7,.0f} env-steps/s = {rate1 / raw:.0%} of the raw simulator on 1 core; "
                f"reward {share:.1%} of the loop's time"
            )
            if n > 1:
                many = train_rate(name, timesteps, n)
                total = sum(r["steps"] / r["seconds"] for r in many)
                raw_all = rawn if env_id == "HalfCheetah-v5" else raw_hopper * n
                print(
                    f"   {env_id}, {timesteps:,} steps: {n} processes, 1 per core: "
                    f"{total:7,.0f} env-steps/s in all = {total / raw_all:.0%} of the raw "
                    f"simulator on {n} cores"
                )

    if not args.skip_iteration:
        _iteration_parts(args, n)
    _per_env_part(args)


def _per_env_part(args: argparse.Namespace) -> None:
    print(
        f"\n5. per env, 1 core: env-steps/s of the raw simulator ({args.per_env_envs} sims, "
        f"random controls) and of the ppo trainer ({args.per_env_envs} envs, "
        f"{args.per_env_timesteps:,} steps, a generated reward)"
    )
    per_env(args.per_env_envs, args.per_env_timesteps, args.per_env_seconds)


def _iteration_parts(args: argparse.Namespace, n: int) -> None:
    t = args.iteration_timesteps
    print(f"\n3. one iteration of K=8 ({args.task}, {t:,} steps each, offline candidates)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one = iteration(args.task, t, 1, "full", root)
        full = iteration(args.task, t, n, "full", root)
        for label, r in (("1 worker   ", one), (f"{n} workers  ", full)):
            print(
                f"   {label}: {r['wall']:6.1f} s wall; {r['trained']} trained; in all, training "
                f"loops {r['train_seconds']:.0f} s and evaluation jobs {r['eval_seconds']:.0f} s; "
                f"best {r['best']} ({r['best_fitness']:.1f})"
            )
        print(f"   speed-up with {n} workers: {one['wall'] / full['wall']:.2f}x")
        differ = [k for k in one["fitness"] if one["fitness"][k] != full["fitness"].get(k)]
        print(f"   the same fitness for every candidate in both: {not differ} {differ or ''}")

        h = args.halving_timesteps
        print(f"\n4. successive halving against full training (the same 8 candidates, {h:,} steps)")
        full = iteration(args.task, h, n, "full", root) if h != t else full
        halving = iteration(args.task, h, n, "halving", root)
        same = halving["best"] == full["best"]
        print(
            f"   full:    {full['spent']:>10,} env steps, {full['wall']:6.1f} s, best "
            f"{full['best']} ({full['best_fitness']:.1f})"
        )
        print(
            f"   halving: {halving['spent']:>10,} env steps "
            f"({halving['spent'] / full['spent']:.0%} of full), {halving['wall']:6.1f} s, best "
            f"{halving['best']} ({halving['best_fitness']:.1f}); same best: {same}"
        )
        chosen = full["fitness"].get(halving["best"])
        if chosen is not None and full["best_fitness"]:
            print(
                f"   halving's choice under full training: {chosen:.1f}, "
                f"{chosen / full['best_fitness']:.0%} of full training's best"
            )
        stopped = {k: v for k, v in halving["stopped"].items() if v is not None}
        print(f"   stopped: {stopped}")
        ranked = sorted(full["fitness"].items(), key=lambda kv: -(kv[1] or -1e18))
        print("   full training's fitness: " + ", ".join(f"{k[-7:]} {v:.1f}" for k, v in ranked))


if __name__ == "__main__":
    main()
