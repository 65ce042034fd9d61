"""How sure a score is: estimates with their spread, and tests of a difference.

A reward's score is a noisy draw: reinforcement learning gives one reward very different
returns from one training seed to the next, and a checkpoint's evaluation episodes are few.
So the loop treats every score as an :class:`Estimate` (the mean over training seeds of each
seed's held-out score, with its spread and what it rests on), and calls one reward better
than another only when :func:`compare` (Welch's t-test, which does not assume equal spreads)
says the difference is beyond that noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
"""The confidence of every interval shown."""
ALPHA = 0.05
"""A difference is called real when its two-sided p-value is below this."""


@dataclass(frozen=True)
class Estimate:
    """A reward's score over training seeds."""

    values: tuple[float, ...]
    """One score per training seed (each a mean over ``episodes`` held-out episodes)."""
    episodes: int
    """Evaluation episodes behind each seed's score."""

    @property
    def seeds(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        """The spread across seeds (sample standard deviation); None with one seed."""
        return float(np.std(self.values, ddof=1)) if self.seeds > 1 else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The mean's :data:`CONFIDENCE` interval (Student's t over seeds); None with one
        seed."""
        if self.std is None:
            return None
        half = _t_quantile(self.seeds - 1) * self.std / math.sqrt(self.seeds)
        return (self.mean - half, self.mean + half)

    def text(self, fmt: str = ".3g") -> str:
        """``4.03 ± 1.6 (3 seeds × 5 episodes)``; with one seed, ``4.03 (1 seed × 5
        episodes, spread unknown)``."""
        what = f"{self.seeds} seed{'s' if self.seeds != 1 else ''}"
        if self.episodes:
            what += f" × {self.episodes} episodes"
        if self.std is None:
            return f"{self.mean:{fmt}} ({what}, spread unknown)"
        return f"{self.mean:{fmt}} ± {self.std:{fmt}} ({what})"


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: the difference of their means and how sure it is."""

    difference: float
    """mean(a) - mean(b)."""
    p: float | None
    """Welch's two-sided p-value; None where a side has fewer than two seeds."""
    interval: tuple[float, float] | None
    """The difference's :data:`CONFIDENCE` interval (Welch-Satterthwaite)."""
    test: str = "Welch's t-test"

    @property
    def decided(self) -> bool:
        """Whether the difference is beyond noise (p below :data:`ALPHA`)."""
        return self.p is not None and self.p < ALPHA

    def text(self, fmt: str = ".3g") -> str:
        """``+1.2 (95% interval 0.3 to 2.1; Welch's t-test p = 0.01)``."""
        if self.p is None:
            return f"{self.difference:+{fmt}} (too few seeds to test)"
        low, high = self.interval or (math.nan, math.nan)
        return (
            f"{self.difference:+{fmt}} ({CONFIDENCE:.0%} interval {low:{fmt}} to {high:{fmt}}; "
            f"{self.test} p = {self.p:.2g})"
        )


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's t-test of mean(a) against mean(b), with the difference's interval."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(xa.mean() - xb.mean())
    if len(xa) < 2 or len(xb) < 2:
        return Comparison(diff, None, None)
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    if se == 0.0:  # every seed scored the same on both sides
        p = 1.0 if diff == 0.0 else 0.0
        return Comparison(diff, p, (diff, diff))
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    from scipy import stats

    p = float(2 * stats.t.sf(abs(diff) / se, df))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return Comparison(diff, p, (diff - half, diff + half))


def seed_noise(groups: Sequence[Sequence[float]]) -> float | None:
    """The spread of one reward's score from seed to seed, pooled over rewards trained on
    several seeds (None when none was): what a single-seed score is uncertain by."""
    dof = sum(len(g) - 1 for g in groups if len(g) > 1)
    if dof == 0:
        return None
    ss = sum(float(np.sum((np.asarray(g) - np.mean(g)) ** 2)) for g in groups if len(g) > 1)
    return math.sqrt(ss / dof)


def _t_quantile(dof: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof))
