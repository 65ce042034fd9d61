"""The lean PPO trainer against SB3 PPO: the same task, reward, seeds and budget; the fitness
the evaluator gives the final checkpoint, and training env-steps per second.

    python benchmarks/ppo_vs_sb3.py [--task half_cheetah] [--timesteps 100000] [--seeds 0 1]
        [--ppo '{"epochs": 5}'] [--sb3 '{}'] [--only ppo]

SB3 runs with the block the MuJoCo tasks used before the lean PPO (16 envs x 128 steps,
batch 1024, 10 epochs, obs and reward normalised), overridable with --sb3; the lean PPO with
the task's own trainer block (64 steps per env, minibatch 1024, 10 epochs, the env count
chosen from the budget), overridable with --ppo. Both train on the env's own reward (the
task's human reward for half_cheetah) in this process, one torch thread. Env-steps/s is over the training loop (the trainer's own ``seconds``: after
building envs and model). The batched env is whatever ``make_batched`` gives for the task (printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from eureka_lab.batched import make_batched
from eureka_lab.evaluation.evaluator import evaluate
from eureka_lab.task.load import load_task
from eureka_lab.trainers import Budget, make_trainer

SB3_BLOCK = {
    "n_envs": 16,
    "n_steps": 128,
    "batch_size": 1024,
    "n_epochs": 10,
    "normalize_obs": True,
    "normalize_reward": True,
}


def run(task, name: str, settings: dict, timesteps: int, seed: int) -> dict:
    trainer = make_trainer(name, settings)
    last: dict = {}

    def report(stats, arrays):
        last.update(step=stats.step, arrays=arrays)

    started = time.monotonic()
    out = trainer.train(task, lambda: None, Budget(timesteps, seed, task.checkpoints), report)
    seconds = time.monotonic() - started
    ev = evaluate(task, trainer, {last["step"]: last["arrays"]}, task.eval_episodes).held_out
    return {
        "steps": out.steps,
        "seconds": seconds,
        "sps": out.steps / seconds,
        "fitness": ev.fitness,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="half_cheetah")
    ap.add_argument("--timesteps", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--ppo", default="{}", help="JSON settings over the lean PPO's defaults here")
    ap.add_argument("--sb3", default="{}", help="JSON settings over the task's SB3 block")
    ap.add_argument("--only", choices=["ppo", "sb3"], default=None)
    args = ap.parse_args()

    task = load_task(args.task)
    own = task.trainer.settings
    sb3 = {**(own if task.trainer.name == "sb3" else SB3_BLOCK), **json.loads(args.sb3)}
    ppo = {**(own if task.trainer.name == "ppo" else {}), **json.loads(args.ppo)}
    probe = make_batched(task, 2)
    print(f"task {task.name} ({task.env_id}), {args.timesteps} steps, seeds {args.seeds}")
    print(f"batched env for the lean PPO: {type(probe).__name__}")
    probe.close()
    print(f"sb3: {sb3}\nppo: {ppo}")
    rows: dict[str, list[dict]] = {}
    for name, settings in (("sb3", sb3), ("ppo", ppo)):
        if args.only and name != args.only:
            continue
        for seed in args.seeds:
            r = run(task, name, settings, args.timesteps, seed)
            rows.setdefault(name, []).append(r)
            print(
                f"{name} seed {seed}: fitness {r['fitness']:9.1f}  {r['steps']} steps in "
                f"{r['seconds']:6.1f} s with set-up; training loop {r['sps']:7.0f} env-steps/s",
                flush=True,
            )
    for name, rs in rows.items():
        fit = [r["fitness"] for r in rs]
        print(
            f"{name}: mean fitness {statistics.mean(fit):9.1f} over {len(fit)} seed(s), "
            f"mean {statistics.mean(r['sps'] for r in rs):7.0f} env-steps/s"
        )


if __name__ == "__main__":
    main()
