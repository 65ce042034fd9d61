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
from typing import Protocol

from eureka_lab.errors import ConfigError
from eureka_lab.records import Candidate, Checkpoint, TrainingResult
from eureka_lab.registry import Registry

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
    def rank(self, trained: Sequence[Trained]) -> Ranking:
        """``trained`` ordered best first, ties grouped; earlier entries win ties."""
        ...


class FitnessSelector:
    """By the task's fitness, measured by the evaluator (higher is better)."""

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


SELECTORS: Registry[type[Selector]] = Registry(
    "selection mode", {"fitness": "eureka_lab.selection:FitnessSelector"}
)


def make_selector(name: str) -> Selector:
    return SELECTORS.get(name)()
