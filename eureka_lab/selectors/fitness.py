"""Selection by the task's fitness, as the evaluator measured it."""

from __future__ import annotations

from collections.abc import Sequence

from eureka_lab.core.errors import ConfigError
from eureka_lab.runs.scores import Trained
from eureka_lab.selectors.base import Ranking, Selector


class FitnessSelector(Selector):
    """By the task's fitness, measured by the evaluator (higher is better): each reward's
    held-out score, averaged over the seeds it trained on."""

    races = True

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        scores: dict[str, float] = {}
        for t in trained:
            score = t.score if t.score is not None else t.result.fitness
            if score is None:
                raise ConfigError(
                    f"Selection by fitness needs a fitness, and {t.id} has none. Give the "
                    "task a fitness function, or choose another selection mode."
                )
            scores[t.id] = score
        ranking: Ranking = []
        last: float | None = None
        for t in sorted(trained, key=lambda t: -scores[t.id]):
            if ranking and scores[t.id] == last:
                ranking[-1].append(t.id)
            else:
                ranking.append([t.id])
            last = scores[t.id]
        return ranking
