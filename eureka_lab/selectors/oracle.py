"""A synthetic person: ICPL's protocol for evaluating preference learning without people."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eureka_lab.core.errors import ConfigError
from eureka_lab.runs.scores import Trained
from eureka_lab.selectors.base import Ranking, Selector


class OracleSelector(Selector):
    """Ranks by the hidden fitness, blurred by ``noise`` (a share of the candidates' score
    range, as a standard deviation) and, with probability ``mistakes``, swapping the most
    and the least preferred."""

    annotator = "oracle"
    feedback = "preference"

    def __init__(self, seed: int = 0, noise: float = 0.0, mistakes: float = 0.0) -> None:
        super().__init__(seed)
        if noise < 0 or not 0 <= mistakes <= 1:
            raise ConfigError(
                f"oracle noise must be >= 0 and mistakes in [0, 1], got {noise}, {mistakes}."
            )
        self.noise, self.mistakes = noise, mistakes
        self.rng = np.random.default_rng(seed)

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        scores = [t.score if t.score is not None else t.result.fitness for t in trained]
        known = [s for s in scores if s is not None]
        if len(known) != len(scores):
            raise ConfigError("The oracle ranks by the hidden fitness, and a candidate has none.")
        spread = (max(known) - min(known)) or 1.0
        seen = [s + self.noise * spread * self.rng.standard_normal() for s in known]
        order = [trained[i].id for i in sorted(range(len(trained)), key=lambda i: -seen[i])]
        if len(order) > 1 and self.rng.random() < self.mistakes:
            order[0], order[-1] = order[-1], order[0]
        return [[cid] for cid in order]
