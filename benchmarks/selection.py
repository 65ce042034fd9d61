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
replays selection rules on those trainings, 2,000 random orders of the collected seeds,
every reward training on the same seeds in the same order (as the loop trains an
iteration's rewards and a race's entrants), and prints:

(a) calibration: the search's estimate of the reward it keeps, against that reward's score
    on fresh seeds, before (one seed, the best checkpoint's own mean) and after (held-out
    scores, raced on fresh seeds, with a 95% interval);
(b) right choice: how often each rule keeps a truly best reward (the highest mean over all
    collected seeds at budget B; rewards that train identically tie) at equal total env
    steps: one seed x B (today's rule and its held-out twin), two seeds x B/2, and a race
    (every reward one seed x B/2, then the leaders on further seeds x B/2 until one is ahead
    beyond noise), and the loop's own race at the full budget with the extra env steps it
    costs. Beside each rule, the 95% bootstrap interval of its rate minus today's rule's,
    resampling the collected seeds: the benchmark's own noise, which decides whether a
    difference is real. Rules that buy seeds with steps rank the rewards at B/2, so the
    report prints how B/2 ranks them against B (Spearman's rho); (b') the same rules
    between two rewards whose order is decided over every seed;
(c) what the honesty costs: env steps and wall time of held-out scoring and of a race, on
    this machine, and in env steps, which carry over to any machine; wall time on a GPU
    projected from a published throughput (a measurement needs a GPU:
    benchmarks/gpu_throughput.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path("runs/benchmarks")
RULES = ("today: 1 seed x B, max over checkpoints", "1 seed x B, held-out", "2 seeds x B/2",
         "race on seeds x B/2")  # fmt: skip
LOOP_RULE = "the loop's race: 2 leaders up to 3 seeds x B"
PUBLISHED_GPU_STEPS = 97_500
"""Env steps per second of a published GPU PPO (TorchRL, HalfCheetah, 4,096 envs, a laptop
RTX 4060): the projection in (c), not a measurement. ``benchmarks/gpu_throughput.py``
measures this project's trainer on a GPU."""


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
                part = path.with_suffix(".part")  # a kill mid-write loses no training
                part.write_text(json.dumps(done, indent=1))
                os.replace(part, path)
                print(
                    f"  {row['candidate']} seed {row['seed']} at {row['timesteps']:,}: "
                    f"held-out {row['held_out']:.3g} ({row['train_seconds']:.0f} s + "
                    f"{row['eval_seconds']:.0f} s)",
                    flush=True,
                )


# ----------------------------------------------------------------------------- report


Pool = dict[str, dict[int, dict[str, Any]]]
"""Per reward, per training seed: one training's record."""


def _pools(rows: list[dict[str, Any]]) -> tuple[int, Pool, Pool, list[int]]:
    """The budget B, the trainings at B and at B/2, and the seeds every reward trained on
    at both."""
    budget = max(r["timesteps"] for r in rows)
    full: Pool = {}
    half: Pool = {}
    for r in rows:
        if r["held_out"] is not None and r["timesteps"] in (budget, budget // 2):
            (full if r["timesteps"] == budget else half).setdefault(r["candidate"], {})[
                r["seed"]
            ] = r
    seeds = sorted(set.intersection(*(set(v) for v in (*full.values(), *half.values()))))
    return budget, full, half, seeds


def _choosing(row: dict[str, Any]) -> float:
    """Today's score: the best checkpoint's own mean (the max over checkpoints)."""
    return max(f for f in row["choosing"] if f is not None)


def race(pool: Pool, order: list[int], seeds: int, leaders: int = 2,
         names: list[str] | None = None) -> tuple[str, list[float], int]:  # fmt: skip
    """The loop's race, replayed: every reward trains on ``order[0]``, then the ``leaders``
    best race on ``order[1]``, ``order[2]``, ... (the same seed for all, as the loop trains
    them) until the leader beats the rest beyond noise (Welch, p < 0.05) or ``seeds`` run
    out. Ties go to the first in ``names`` (default: the pool's order). The winner, its
    scores and the trainings used."""
    from eureka_lab.core.statistics import compare

    names = list(pool) if names is None else names
    scores = {c: [pool[c][order[0]]["held_out"]] for c in names}
    used = len(names)
    alive = sorted(names, key=lambda c: -scores[c][0])[:leaders]
    n = 1
    while len(alive) > 1 and n < seeds:
        n += 1
        for c in alive:
            scores[c].append(pool[c][order[n - 1]]["held_out"])
            used += 1
        leader = max(alive, key=lambda c: np.mean(scores[c]))
        alive = [c for c in alive if c == leader or not (
            (t := compare(scores[leader], scores[c])).decided and t.difference > 0)]  # fmt: skip
    winner = max(alive, key=lambda c: np.mean(scores[c]))
    return winner, scores[winner], used


def picks(full: Pool, half: Pool, order: list[int], rng: np.random.Generator) -> dict[str, str]:
    """What each rule keeps, all training on the seeds in ``order`` (one list for every
    reward, as the loop trains an iteration's rewards and a race's entrants on the same
    seeds): the rules of (b) at k x B env steps, and the loop's race with more. Every rule
    breaks ties at random (many rewards score 0 on a bad seed)."""
    names = [str(c) for c in rng.permutation(sorted(full))]
    k = len(names)
    return {
        RULES[0]: max(names, key=lambda c: _choosing(full[c][order[0]])),
        RULES[1]: max(names, key=lambda c: full[c][order[0]]["held_out"]),
        RULES[2]: max(names, key=lambda c: np.mean([half[c][s]["held_out"] for s in order[:2]])),
        RULES[3]: race(half, order, 1 + k // 2, names=names)[0],  # k x B/2, then <= k x B/2
        LOOP_RULE: race(full, order, 3, names=names)[0],
    }


def right_choice(full: Pool, half: Pool, seeds: list[int], rng: np.random.Generator,
                 draws: int) -> tuple[dict[str, float], dict[str, float]]:  # fmt: skip
    """Per rule: how often it keeps a truly best reward (the highest mean over ``seeds`` at
    B; rewards that train identically tie) and its mean regret, over ``draws`` random
    orders of ``seeds``."""
    truth = {c: float(np.mean([full[c][s]["held_out"] for s in seeds])) for c in full}
    top = max(truth.values())
    right = dict.fromkeys((*RULES, LOOP_RULE), 0.0)
    regret = dict.fromkeys((*RULES, LOOP_RULE), 0.0)
    for _ in range(draws):
        for rule, pick in picks(full, half, list(rng.permutation(seeds)), rng).items():
            right[rule] += truth[pick] == top
            regret[rule] += top - truth[pick]
    return {r: n / draws for r, n in right.items()}, {r: x / draws for r, x in regret.items()}


def pair_choice(full: Pool, half: Pool, pairs: list[tuple[str, str]], seeds: list[int],
                rng: np.random.Generator, draws: int) -> tuple[dict[str, float], None]:  # fmt: skip
    """Per rule: how often it keeps the better of two rewards, ``(better, worse)`` by their
    means over every collected seed, averaged over ``pairs``; each pair alone at 2 x B env
    steps (the race: both one seed x B/2, then one more each)."""
    right = dict.fromkeys((*RULES, LOOP_RULE), 0)
    per = max(1, draws // len(pairs))
    for better, worse in pairs:
        duo, halves = {c: full[c] for c in (better, worse)}, {c: half[c] for c in (better, worse)}
        for _ in range(per):
            for rule, pick in picks(duo, halves, list(rng.permutation(seeds)), rng).items():
                right[rule] += pick == better
    return {r: n / (per * len(pairs)) for r, n in right.items()}, None


Measure = Callable[[list[int], np.random.Generator, int], tuple[dict[str, float], Any]]
"""Rates per rule on some seeds (``right_choice`` or ``pair_choice`` with its pools)."""


def versus_today(measure: Measure, seeds: list[int], rng: np.random.Generator,
                 replicates: int = 200, draws: int = 100) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Per rule: the 95% bootstrap interval of (its rate by ``measure`` minus today's rule's),
    resampling the collected training seeds (the unit the noise comes from). ``draws`` per
    resample must be many: their own Monte Carlo noise widens the interval (at 1 draw per
    pair of rewards, the search's pairs gave -6% to +28%; at 8, +5% to +19%)."""
    diffs: dict[str, list[float]] = {r: [] for r in (*RULES[1:], LOOP_RULE)}
    for _ in range(replicates):
        sample = [int(s) for s in rng.choice(seeds, len(seeds), replace=True)]
        rate, _ = measure(sample, rng, draws)
        for rule in diffs:
            diffs[rule].append(rate[rule] - rate[RULES[0]])
    return {r: (float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975)))
            for r, d in diffs.items()}  # fmt: skip


def _rates(rate: dict[str, float], band: dict[str, tuple[float, float]], rules: tuple[str, ...],
           regret: dict[str, float] | None = None) -> None:  # fmt: skip
    for rule in rules:
        tail = "" if regret is None else f"mean regret {regret[rule]:<8.3g} "
        if rule != RULES[0]:
            tail += "[{:+.0%} to {:+.0%}]".format(*band[rule])
        print(f"      {rule:42s} {rate[rule]:6.1%}   {tail}")


def report(draws: int = 2000) -> None:
    from scipy import stats

    from eureka_lab.core.statistics import Estimate, compare

    rng = np.random.default_rng(0)
    for path in sorted(OUT.glob("selection-*.json")):
        budget, full, half, seeds = _pools(json.loads(path.read_text()))
        rows = [r for c in full.values() for r in c.values()]
        task = path.stem.removeprefix("selection-")
        names = sorted(full)
        k = len(names)
        at = {c: [full[c][s]["held_out"] for s in seeds] for c in names}
        truth = {c: float(np.mean(at[c])) for c in names}
        best = max(truth, key=truth.__getitem__)
        runner_up = max((c for c in names if truth[c] < truth[best]), key=truth.__getitem__)
        apart = compare(at[best], at[runner_up])
        print(f"\n== {task}: {k} rewards, budget B = {budget:,} steps, {len(seeds)} seeds "
              "each at B and at B/2 (the same seeds for every reward, as the loop trains)")  # fmt: skip
        for c in names:
            print(f"  {c:15s} held-out {truth[c]:8.3g} ± {np.std(at[c], ddof=1):.3g} over seeds; "
                  f"best checkpoint's own mean "
                  f"{np.mean([_choosing(full[c][s]) for s in seeds]):8.3g}; at B/2 "
                  f"{np.mean([half[c][s]['held_out'] for s in seeds]):8.3g}"
                  + ("   <- truly best" if truth[c] == truth[best] else ""))  # fmt: skip
        print(f"  the truly best against the runner-up over every seed: {apart.difference:+.3g}, "
              f"Welch p = {'-' if apart.p is None else format(apart.p, '.2g')}"
              + (" (the truth itself is within noise: (b) can only be near chance here)"
                 if apart.p is None or apart.p >= 0.05 else ""))  # fmt: skip
        halves = [float(np.mean([half[c][s]["held_out"] for s in seeds])) for c in names]
        rho = float(stats.spearmanr(halves, [truth[c] for c in names]).statistic)  # ties shared
        print(f"  B/2 ranks the rewards as B does? Spearman rho = {rho:+.2f} (rules that buy "
              "seeds with steps rank at B/2)")  # fmt: skip

        # (b) right choice at equal env steps (k x B in all), with its bootstrap interval
        right, regret = right_choice(full, half, seeds, rng, draws)
        band = versus_today(partial(right_choice, full, half), seeds, rng, draws=400)
        print(f"  (b) keeps a truly best reward, at equal env steps (k x B), {draws} draws of "
              "seed order; [the 95% bootstrap interval over seeds of its rate minus today's]:")  # fmt: skip
        _rates(right, band, RULES, regret)
        extra = np.mean([race(full, list(rng.permutation(seeds)), 3)[2] - k for _ in range(200)])
        print(f"      and with more env steps (+{extra / k:.0%} on average):")
        _rates(right, band, (LOOP_RULE,), regret)

        # (b') pairs whose order is decided over every seed: the same rules between two
        pairs = [(a, b) if truth[a] > truth[b] else (b, a)
                 for i, a in enumerate(names) for b in names[i + 1:]
                 if compare(at[a], at[b]).decided]  # fmt: skip
        print(f"  (b') the {len(pairs)} pairs of rewards whose order is decided over every seed "
              "(Welch p < 0.05): how often each rule keeps the better of the two, at 2 x B "
              "[bootstrap interval of its rate minus today's]:")  # fmt: skip
        if pairs:
            hits, _ = pair_choice(full, half, pairs, seeds, rng, draws)
            band = versus_today(
                partial(pair_choice, full, half, pairs), seeds, rng, draws=8 * len(pairs)
            )
            _rates(hits, band, RULES)

        # (a) calibration of the kept reward's estimate against fresh seeds
        before = after = covered = 0.0
        for _ in range(draws):
            order = [int(s) for s in rng.permutation(seeds)]
            shuffled = [str(c) for c in rng.permutation(names)]  # ties at random
            kept = max(shuffled, key=lambda c: _choosing(full[c][order[0]]))
            before += (_choosing(full[kept][order[0]]) - truth[kept]) / draws
            winner, scores, _ = race(full, order, 3, names=shuffled)
            estimate = Estimate(tuple(scores), episodes=0)
            after += (estimate.mean - truth[winner]) / draws
            fresh = np.mean([full[winner][s]["held_out"] for s in order[3:6]])
            low, high = estimate.interval or (estimate.mean, estimate.mean)
            covered += (low <= fresh <= high) / draws
        print("  (a) the kept reward's search estimate minus its mean over every seed:")
        print(f"      before (one seed, best checkpoint's own mean): {before:+.3g}")
        print(
            f"      after (held-out, raced, up to 3 seeds):        {after:+.3g}; "
            f"a fresh 3-seed final lies in its 95% interval in {covered:.0%} of draws"
        )

        # (c) cost
        train = np.mean([r["train_seconds"] for r in rows])
        evals = np.mean([r["eval_seconds"] for r in rows])
        cps = np.mean([r["checkpoints"] for r in rows])
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
        print(
            f"      on a GPU, projected (not measured: no GPU was lent): 4 x {budget:,} env "
            f"steps at a published {PUBLISHED_GPU_STEPS:,} steps/s is about "
            f"{4 * budget / PUBLISHED_GPU_STEPS:.2g} s, or about "
            f"{budget / PUBLISHED_GPU_STEPS:.2g} s where the 4 train as worlds of one batch"
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
