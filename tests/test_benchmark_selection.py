"""The selection benchmark's replay (benchmarks/selection.py) on trainings whose truth is
known by construction: the rules it reports are computed as it says."""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "selection_benchmark", Path(__file__).parents[1] / "benchmarks" / "selection.py"
)
assert _spec is not None and _spec.loader is not None
selection = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(selection)


def _row(name: str, seed: int, steps: int, held_out: float, peak: float) -> dict[str, Any]:
    return {"candidate": name, "seed": seed, "timesteps": steps, "held_out": held_out,
            "choosing": [peak - 1.0, peak, peak - 2.0], "train_seconds": 1.0, "eval_seconds": 0.1,
            "episodes": 5, "checkpoints": 3}  # fmt: skip


def _pools(table: dict[str, list[tuple[float, float]]], steps: int = 100) -> Any:
    rows = [
        _row(name, seed, at, held, peak)
        for name, scores in table.items()
        for seed, (held, peak) in enumerate(scores)
        for at in (steps, steps // 2)
    ]
    return selection._pools(rows)


def test_a_reward_better_on_every_seed_is_kept_by_every_rule() -> None:
    budget, full, half, seeds = _pools(
        {"good": [(10.0 + s, 10.0 + s) for s in range(6)], "bad": [(1.0, 2.0)] * 6}
    )
    assert budget == 100 and seeds == list(range(6))
    right, regret = selection.right_choice(full, half, seeds, np.random.default_rng(0), 50)
    assert all(rate == 1.0 for rate in right.values())
    assert all(r == 0.0 for r in regret.values())
    bands = selection.versus_today(
        partial(selection.right_choice, full, half), seeds, np.random.default_rng(1), 20, 10
    )
    assert all(band == (0.0, 0.0) for band in bands.values())


def test_todays_rule_is_fooled_by_a_lucky_checkpoint_that_held_out_scores_are_not() -> None:
    # "lucky" peaks once far above its held-out level; "steady" is better on held-out.
    _, full, half, seeds = _pools({"lucky": [(1.0, 50.0)] * 6, "steady": [(5.0, 6.0)] * 6})
    right, regret = selection.right_choice(full, half, seeds, np.random.default_rng(0), 50)
    assert right[selection.RULES[0]] == 0.0 and regret[selection.RULES[0]] == 4.0
    assert right[selection.RULES[1]] == 1.0


def test_rewards_that_train_identically_tie_for_best() -> None:
    same = [(float(s), float(s)) for s in range(6)]
    _, full, half, seeds = _pools({"a": same, "b": same, "worse": [(-1.0, -1.0)] * 6})
    right, _ = selection.right_choice(full, half, seeds, np.random.default_rng(0), 50)
    assert all(rate == 1.0 for rate in right.values())


def test_every_reward_trains_on_the_same_seeds_in_a_draw() -> None:
    # Seed s is good or bad for every reward alike; "a" is ahead by 1 on each seed. Paired
    # by seed, every one-seed rule keeps "a"; drawn apart, seeds would swamp the gap.
    _, full, half, seeds = _pools(
        {
            "a": [(10.0 * s + 1, 10.0 * s + 1) for s in range(8)],
            "b": [(10.0 * s, 10.0 * s) for s in range(8)],
        }  # fmt: skip
    )
    right, _ = selection.right_choice(full, half, seeds, np.random.default_rng(0), 200)
    assert right[selection.RULES[0]] == right[selection.RULES[1]] == 1.0


def test_the_race_stops_when_the_leader_is_ahead_beyond_noise() -> None:
    _, full, _, seeds = _pools(
        {
            "a": [(10.0 + 0.1 * s, 0.0) for s in range(6)],
            "b": [(1.0 + 0.1 * s, 0.0) for s in range(6)],
            "c": [(0.0, 0.0)] * 6,
        }  # fmt: skip
    )
    winner, scores, used = selection.race(full, seeds, seeds=6)
    assert winner == "a"
    assert used == 3 + 2  # three first seeds, then the two leaders on one more: decided
    assert scores == [10.0, 10.1]


def test_ties_are_broken_at_random_not_by_name() -> None:
    # Every checkpoint of both scores 0 on the choosing episodes; "b" is better held out.
    _, full, half, seeds = _pools({"a": [(0.0, 0.0)] * 8, "b": [(1.0, 0.0)] * 8})
    right, _ = selection.right_choice(full, half, seeds, np.random.default_rng(0), 400)
    assert 0.4 < right[selection.RULES[0]] < 0.6
    assert right[selection.RULES[1]] == 1.0
