"""Can the loop tell a better reward from a lucky seed? Measured on fixed candidate sets.

    python benchmarks/selection.py collect [--tasks hopper half_cheetah] [--seeds 8]
    python benchmarks/selection.py collect --tasks mountain_car_fuel --from-run runs/<id> --trust-run
    python benchmarks/selection.py report

``collect`` trains every candidate of each task (its seed rewards, the human reward and the
sparse one; with ``--from-run``, every reward a run trained instead of the seeds: the
candidates a real search chose among) on many seeds, at the task's budget B
and at B/2, with this project's trainer and evaluator, and keeps for each training every
checkpoint's score on the choosing episodes and the chosen checkpoint's held-out score
(``runs/benchmarks/selection-<task>.json``; it resumes where it stopped). ``report`` then
replays selection rules on draws of those trainings (2,000 draws each) and prints:

(a) calibration: the search's estimate of the reward it keeps, against that reward's score
    on fresh seeds, before (one seed, the best checkpoint's own mean) and after (held-out
    scores, raced on fresh seeds, with a 95% interval);
(b) right choice: how often each rule keeps the truly better reward (the one with the
    highest mean over all collected seeds at budget B) at equal total env steps: one seed
    x B (today's rule and its held-out twin), two seeds x B/2, and a race (every reward one
    seed x B/2, then the leaders on further seeds x B/2 until one is ahead beyond noise),
    and the loop's own race at the full budget with the extra env steps it costs; (b') the
    same rules between two rewards whose order is decided over every seed;
(c) what the honesty costs: env steps and wall time of held-out scoring and of a race, on
    this machine, and in env steps, which carry over to any machine; wall time on a GPU
    needs a GPU measurement (benchmarks/gpu_throughput.py), which this script does not make.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path("runs/benchmarks")
RULES = ("today: 1 seed x B, max over checkpoints", "1 seed x B, held-out", "2 seeds x B/2",
         "race on seeds x B/2")  # fmt: skip
LOOP_RULE = "the loop's race: 2 leaders up to 3 seeds x B"


def candidates(task_name: str, run: Path | None = None) -> dict[str, str | None]:
    """The task's seed rewards (or, with ``run``, every reward that run trained in its
    search), its human reward and its sparse one; the same code once."""
    from eureka_lab.runs.store import RunStore
    from eureka_lab.task.load import load_task

    task = load_task(task_name)
    out: dict[str, str | None] = {}
    if run is None:
        for i, ref in enumerate(task.seed_rewards):
            out[f"seed_reward_{i}"] = task.reward_source(ref)
    else:
        # A run's rewards were written by a model: this script trains them in its own
        # processes, outside the sandbox, so only after the user said they trust them
        # (--trust-run) and only those that pass the static reward check.
        from eureka_lab.reward.check import check_code

        store = RunStore.open(run)
        for cand in store.candidates():
            code = store.reward_code(cand.id)
            result = store.result(cand.id)
            if (
                code
                and result
                and result.status == "trained"
                and code not in out.values()
                and not check_code(code)
            ):
                out[cand.id.replace("/", "-")] = code
    for name, ref in (("human", task.human_reward), ("sparse", task.sparse_reward)):
        code = task.reward_source(ref)
        if code is None or code not in out.values():  # a human reward that is a seed: once
            out[name] = code
    return out


def train_one(args: tuple[str, str, str | None, int, int]) -> dict[str, Any]:
    """One training and its evaluation, in this process, outside the sandbox (the task's own
    rewards, or a run's that the user trusts: ``--trust-run``)."""
    task_name, name, code, seed, timesteps = args
    import torch

    torch.set_num_threads(1)
    from eureka_lab.evaluation.evaluator import evaluate
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.task.load import load_task
    from eureka_lab.trainers import Budget, make_trainer

    task = load_task(task_name)
    trainer = make_trainer(task.trainer)
    policies: dict[int, dict[str, np.ndarray]] = {}

    def report(stats: Any, arrays: dict[str, np.ndarray], state: Any = None) -> None:
        policies[stats.step] = arrays

    def load(namespace: str = "numpy", device: str = "cpu") -> Any:
        return None if code is None else load_reward(code, namespace, device)

    started = time.monotonic()
    every = max(1, task.timesteps // task.checkpoints)  # the loop's checkpoints, at any budget
    trainer.train(task, load, Budget(timesteps, seed, task.checkpoints, every=every), report)
    trained = time.monotonic()
    evaluated = evaluate(task, trainer, policies, task.eval_episodes)
    held_out = evaluated.held_out
    return {
        "candidate": name,
        "seed": seed,
        "timesteps": timesteps,
        "choosing": [e.fitness for e in evaluated.checkpoints],
        "held_out": None if held_out is None else held_out.fitness,
        "train_seconds": round(trained - started, 2),
        "eval_seconds": round(time.monotonic() - trained, 2),
        "episodes": task.eval_episodes,
        "checkpoints": len(evaluated.checkpoints),
    }


def collect(tasks: list[str], seeds: int, workers: int, run: Path | None = None) -> None:
    from eureka_lab.task.load import load_task

    OUT.mkdir(parents=True, exist_ok=True)
    for task_name in tasks:
        path = OUT / f"selection-{task_name}{'-' + run.name if run else ''}.json"
        done = json.loads(path.read_text()) if path.exists() else []
        have = {(r["candidate"], r["seed"], r["timesteps"]) for r in done}
        budget = load_task(task_name).timesteps
        todo = [
            (task_name, name, code, seed, steps)
            for steps in (budget, budget // 2)
            for seed in range(seeds)
            for name, code in candidates(task_name, run).items()
            if (name, seed, steps) not in have
        ]
        print(f"{task_name}: {len(done)} trainings recorded, {len(todo)} to go", flush=True)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for row in pool.imap_unordered(train_one, todo):
                done.append(row)
                path.write_text(json.dumps(done, indent=1))
                print(
                    f"  {row['candidate']} seed {row['seed']} at {row['timesteps']:,}: "
                    f"held-out {row['held_out']:.3g} ({row['train_seconds']:.0f} s + "
                    f"{row['eval_seconds']:.0f} s)",
                    flush=True,
                )


# ----------------------------------------------------------------------------- report


def _pool(rows: list[dict[str, Any]], steps: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["timesteps"] == steps and r["held_out"] is not None:
            out.setdefault(r["candidate"], []).append(r)
    return out


def race(pool: dict[str, list[dict[str, Any]]], rng: np.random.Generator, seeds: int,
         leaders: int = 2) -> tuple[str, list[float], int, list[int]]:  # fmt: skip
    """Every reward one seed, then the ``leaders`` best race on further seeds until the
    leader beats the rest beyond noise (Welch, p < 0.05) or ``seeds`` run out. The
    winner, its scores, the trainings used, and which of the winner's it used."""
    from eureka_lab.core.statistics import compare

    draws = {c: list(rng.permutation(len(rows))) for c, rows in pool.items()}
    scores = {c: [pool[c][draws[c][0]]["held_out"]] for c in pool}
    used = len(pool)
    alive = sorted(pool, key=lambda c: -scores[c][0])[:leaders]
    n = 1
    while len(alive) > 1 and n < seeds:
        n += 1
        for c in alive:
            scores[c].append(pool[c][draws[c][n - 1]]["held_out"])
            used += 1
        leader = max(alive, key=lambda c: np.mean(scores[c]))
        alive = [c for c in alive if c == leader or not (
            (t := compare(scores[leader], scores[c])).decided and t.difference > 0)]  # fmt: skip
    winner = max(alive, key=lambda c: np.mean(scores[c]))
    return winner, scores[winner], used, [int(i) for i in draws[winner][: len(scores[winner])]]


def report(draws: int = 2000) -> None:
    from eureka_lab.core.statistics import Estimate, compare

    rng = np.random.default_rng(0)
    for path in sorted(OUT.glob("selection-*.json")):
        rows = json.loads(path.read_text())
        task = path.stem.removeprefix("selection-")
        budget = max(r["timesteps"] for r in rows)
        full, half = _pool(rows, budget), _pool(rows, budget // 2)
        names = sorted(full)
        truth = {c: float(np.mean([r["held_out"] for r in full[c]])) for c in names}
        spread = {c: float(np.std([r["held_out"] for r in full[c]], ddof=1)) for c in names}
        best = max(truth, key=truth.__getitem__)
        k = len(names)
        runner_up = max((c for c in names if c != best), key=truth.__getitem__)
        apart = compare(
            [r["held_out"] for r in full[best]], [r["held_out"] for r in full[runner_up]]
        )
        print(f"\n== {task}: {k} rewards, budget B = {budget:,} steps, "
              f"{min(len(v) for v in full.values())} seeds each at B")  # fmt: skip
        for c in names:
            old = [max(f for f in r["choosing"] if f is not None) for r in full[c]]
            print(f"  {c:14s} held-out {truth[c]:8.3g} ± {spread[c]:.3g} over seeds; "
                  f"best checkpoint's own mean {np.mean(old):8.3g}"
                  + ("   <- truly best" if c == best else ""))  # fmt: skip
        print(f"  the truly best against the runner-up over every seed: {apart.difference:+.3g}, "
              f"Welch p = {'-' if apart.p is None else format(apart.p, '.2g')}"
              + (" (the truth itself is within noise: (b) can only be near chance here)"
                 if apart.p is None or apart.p >= 0.05 else ""))  # fmt: skip

        # (b) right choice at equal env steps (k x B in all)
        regret = dict.fromkeys((*RULES, LOOP_RULE), 0.0)
        right = dict.fromkeys((*RULES, LOOP_RULE), 0)
        extra = 0
        for _ in range(draws):
            one = {c: full[c][rng.integers(len(full[c]))] for c in names}
            picks = {
                RULES[0]: max(
                    names, key=lambda c: max(f for f in one[c]["choosing"] if f is not None)
                ),
                RULES[1]: max(names, key=lambda c: one[c]["held_out"]),
            }
            two = {c: rng.choice(len(half[c]), 2, replace=False) for c in names}
            picks[RULES[2]] = max(
                names, key=lambda c: np.mean([half[c][i]["held_out"] for i in two[c]])
            )
            picks[RULES[3]] = race(half, rng, seeds=1 + k // 2)[0]  # k/2 + k x B/2 ... = k x B
            picks[LOOP_RULE], _, used, _ = race(full, rng, seeds=3)
            extra += used - k
            for rule, pick in picks.items():
                right[rule] += pick == best
                regret[rule] += truth[best] - truth[pick]
        print("  (b) keeps the truly better reward, at equal env steps (k x B), "
              f"{draws} draws of seeds:")  # fmt: skip
        for rule in RULES:
            print(f"      {rule:42s} {right[rule] / draws:6.1%}   mean regret "
                  f"{regret[rule] / draws:.3g}")  # fmt: skip
        print(f"      and with more env steps (+{extra / draws / k:.0%} on average):")
        print(f"      {LOOP_RULE:42s} {right[LOOP_RULE] / draws:6.1%}   mean regret "
              f"{regret[LOOP_RULE] / draws:.3g}")  # fmt: skip

        # (b') pairs whose order is decided over every seed: the same rules between two
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                 if compare([r["held_out"] for r in full[a]],
                            [r["held_out"] for r in full[b]]).decided]  # fmt: skip
        print(f"  (b') the {len(pairs)} pairs of rewards whose order is decided over every seed "
              "(Welch p < 0.05): how often each rule keeps the better of the two, at 2 x B:")  # fmt: skip
        hits = dict.fromkeys(RULES, 0)
        for a, b in pairs:
            better = a if truth[a] > truth[b] else b
            duo = {c: full[c] for c in (a, b)}
            halves = {c: half[c] for c in (a, b)}
            for _ in range(draws // max(len(pairs), 1) + 1):
                one = {c: duo[c][rng.integers(len(duo[c]))] for c in duo}
                two = {c: rng.choice(len(halves[c]), 2, replace=False) for c in duo}
                picks = [
                    max(duo, key=lambda c: max(f for f in one[c]["choosing"] if f is not None)),
                    max(duo, key=lambda c: one[c]["held_out"]),
                    max(duo, key=lambda c: np.mean([halves[c][i]["held_out"] for i in two[c]])),
                    race(halves, rng, seeds=2, leaders=2)[0],
                ]
                for rule, pick in zip(RULES, picks, strict=True):
                    hits[rule] += pick == better
        rounds = len(pairs) * (draws // max(len(pairs), 1) + 1)
        for rule in RULES if pairs else ():
            print(f"      {rule:42s} {hits[rule] / rounds:6.1%}")

        # (a) calibration of the kept reward's estimate against fresh seeds
        before = after = 0.0
        covered = 0
        for _ in range(draws):
            one = {c: full[c][rng.integers(len(full[c]))] for c in names}
            kept = max(names, key=lambda c: max(f for f in one[c]["choosing"] if f is not None))
            claim = max(f for f in one[kept]["choosing"] if f is not None)
            before += claim - truth[kept]
            winner, scores, _, used = race(full, rng, seeds=3)
            estimate = Estimate(tuple(scores), episodes=0)
            after += estimate.mean - truth[winner]
            unused = [r for i, r in enumerate(full[winner]) if i not in used]
            fresh = np.mean([r["held_out"] for r in rng.choice(unused, 3, replace=False)])
            low, high = estimate.interval or (estimate.mean, estimate.mean)
            covered += low <= fresh <= high
        print("  (a) the kept reward's search estimate minus its mean over every seed:")
        print(f"      before (one seed, best checkpoint's own mean): {before / draws:+.3g}")
        print(
            f"      after (held-out, raced, up to 3 seeds):        {after / draws:+.3g}; "
            f"a fresh 3-seed final lies in its 95% interval in {covered / draws:.0%} of draws"
        )

        # (c) cost
        train = np.mean([r["train_seconds"] for r in rows if r["timesteps"] == budget])
        evals = np.mean([r["eval_seconds"] for r in rows if r["timesteps"] == budget])
        cps = np.mean([r["checkpoints"] for r in rows if r["timesteps"] == budget])
        held = evals / (cps + 1)  # one held-out evaluation = one checkpoint's
        print(
            f"  (c) one training at B: {train:.0f} s, its evaluation {evals:.0f} s on this "
            f"machine (the held-out episodes: {held:.1f} s of it, {held / (train + evals):.0%})"
        )
        print(
            f"      a race of 2 leaders up to 3 seeds adds up to 4 trainings per iteration "
            f"(+{4 / k:.0%} env steps over k = {k}): about {4 * (train + evals) / 2:.0f} s "
            "here with 2 workers"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--tasks", nargs="+", default=["hopper", "half_cheetah"])
    c.add_argument("--seeds", type=int, default=8)
    c.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    c.add_argument("--from-run", type=Path, help="the rewards a run trained, not the seeds")
    c.add_argument(
        "--trust-run",
        action="store_true",
        help="with --from-run: train the run's rewards here, outside the sandbox (only for "
        "a run whose rewards you have read and trust)",
    )
    sub.add_parser("report")
    args = parser.parse_args()
    if args.cmd == "collect" and args.from_run and not args.trust_run:
        parser.error(
            "--from-run trains a model's rewards in this process, outside the sandbox: read "
            "them (eureka-lab show RUN), then add --trust-run"
        )
    if args.cmd == "collect":
        collect(args.tasks, args.seeds, args.workers, args.from_run)
    else:
        report()


if __name__ == "__main__":
    main()
