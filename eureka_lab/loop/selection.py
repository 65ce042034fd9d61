"""Asking the selector: each ranking it gives is taken as it is, and a preference query (a
person's, an oracle's) is recorded and counted."""

from __future__ import annotations

import time
from collections.abc import Sequence

from eureka_lab.loop.journal import Journal
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.selectors.base import Selector


class Selection:
    """The run's selector, with its preference queries recorded."""

    def __init__(self, journal: Journal, selector: Selector) -> None:
        self.journal = journal
        self.selector = selector

    def rank(self, trained: Sequence[Trained], iteration: int) -> list[list[str]]:
        """The selector's ranking; a preference query is recorded."""
        ranking = self.selector.rank(trained)
        annotator = self.selector.annotator
        if annotator is not None and not self.selector.records_itself:
            self.journal.store.append_ranking(
                Ranking(
                    annotator=annotator,
                    time=time.time(),
                    iteration=iteration,
                    candidates=[t.id for t in trained],
                    order=ranking,
                )
            )
            self.journal.emit("preference", iteration=iteration, annotator=annotator, order=ranking)
        return ranking

    def keep(self, best: Trained | None, newest: Trained | None, iteration: int) -> Trained | None:
        """The run's best after an iteration whose best is ``newest``: the newest where
        there was none or the selector always prefers it, else the first of a ranking of
        the two (the earlier best wins ties)."""
        if newest is None:
            return best
        if best is None or self.selector.prefers_newest:
            return newest
        ranking = self.rank([newest, best], iteration)
        return newest if ranking[0][0] == newest.id else best
