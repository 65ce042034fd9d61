"""The selection seam: order an iteration's trained candidates, best first.

A selector returns a ranking: a list of groups, best group first; candidates in one group
are tied. The loop takes the first candidate of the first group as the iteration's best,
and ranks the run's best against each iteration's best the same way. Selectors are chosen
by name from :data:`SELECTORS`: ``fitness`` today; a person's ranking or a preference
oracle register the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.registry import Registry
from eureka_lab.runs.records import Candidate, Checkpoint, TrainingResult

Ranking = list[list[str]]


@dataclass(frozen=True)
class Trained:
    """A candidate that trained, with what training and evaluation showed."""

    candidate: Candidate
    result: TrainingResult
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.candidate.id


class Selector(Protocol):
    """Orders candidates. A selector with an ``annotator`` (a person, an oracle) answers
    preference queries: the loop records each ranking it gives and counts them."""

    annotator: str | None

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        """``trained`` ordered best first, ties grouped; earlier entries win ties."""
        ...


class FitnessSelector:
    """By the task's fitness, measured by the evaluator (higher is better)."""

    annotator = None

    def __init__(self, seed: int = 0) -> None:
        pass

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        missing = [t.id for t in trained if t.result.fitness is None]
        if missing:
            raise ConfigError(
                f"Selection by fitness needs a fitness, and {missing[0]} has none. Give the "
                "task a fitness function, or choose another selection mode."
            )
        ranking: Ranking = []
        last: float | None = None
        for t in sorted(trained, key=lambda t: -t.result.fitness):  # type: ignore[operator]
            if ranking and t.result.fitness == last:
                ranking[-1].append(t.id)
            else:
                ranking.append([t.id])
            last = t.result.fitness
        return ranking


class OracleSelector:
    """A synthetic person (ICPL's protocol for evaluating without people): ranks by the
    hidden fitness, blurred by ``noise`` (a share of the candidates' score range, as a
    standard deviation) and, with probability ``mistakes``, swapping the most and the least
    preferred."""

    annotator = "oracle"

    def __init__(self, seed: int = 0, noise: float = 0.0, mistakes: float = 0.0) -> None:
        if noise < 0 or not 0 <= mistakes <= 1:
            raise ConfigError(
                f"oracle noise must be >= 0 and mistakes in [0, 1], got {noise}, {mistakes}."
            )
        import numpy as np

        self.noise, self.mistakes = noise, mistakes
        self.rng = np.random.default_rng(seed)

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        scores = [t.result.fitness for t in trained]
        if any(s is None for s in scores):
            raise ConfigError("The oracle ranks by the hidden fitness, and a candidate has none.")
        spread = (max(scores) - min(scores)) or 1.0  # type: ignore[type-var,operator]
        seen = [s + self.noise * spread * self.rng.standard_normal() for s in scores]  # type: ignore[operator]
        order = [trained[i].id for i in sorted(range(len(trained)), key=lambda i: -seen[i])]
        if len(order) > 1 and self.rng.random() < self.mistakes:
            order[0], order[-1] = order[-1], order[0]
        return [[cid] for cid in order]


SELECTORS: Registry[type[Selector]] = Registry(
    "selection mode",
    {
        "fitness": "eureka_lab.selectors.base:FitnessSelector",
        "oracle": "eureka_lab.selectors.base:OracleSelector",
        "human": "eureka_lab.selectors.human:HumanSelector",
        "text": "eureka_lab.selectors.human:TextSelector",
    },
)


def make_selector(name: str, seed: int = 0, **options: Any) -> Selector:
    """The selector ``name`` with its ``options`` (the oracle's ``noise`` and ``mistakes``)."""
    return SELECTORS.get(name)(seed=seed, **options)
