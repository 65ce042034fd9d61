"""Asking the selector: each ranking it gives is taken as it is, and a preference query (a
person's, an oracle's) is recorded and counted."""

from __future__ import annotations

import time
from collections.abc import Sequence

from eureka_lab.loop.journal import Journal
from eureka_lab.runs.records import Ranking, Verdict
from eureka_lab.runs.scores import Trained
from eureka_lab.selectors.base import Selector


class Selection:
    """The run's selector, with its preference queries recorded."""

    def __init__(self, journal: Journal, selector: Selector) -> None:
        self.journal = journal
        self.selector = selector

    def rank(self, trained: Sequence[Trained], iteration: int) -> list[list[str]]:
        """The selector's ranking; a preference query is recorded, and a person's answer
        acknowledged."""
        ranking = self.selector.rank(trained)
        self._record(trained, ranking, iteration)
        return ranking

    def judge(self, best: Trained, human: Trained, iteration: int) -> Verdict | None:
        """The final verdict on the policies of the run's best and of the human reward:
        which the selector prefers (a person judges them blind), or can't tell; recorded
        and acknowledged as a ranking is."""
        order = self.selector.judge(best, human)
        if sorted(c for group in order for c in group) != sorted([best.id, human.id]):
            return None
        self._record([best, human], order, iteration, final=True)
        if len(order) == 1:
            return "can't tell"
        return "best" if order[0] == [best.id] else "human"

    def _record(
        self,
        trained: Sequence[Trained],
        ranking: list[list[str]],
        iteration: int,
        final: bool = False,
    ) -> None:
        annotator = self.selector.annotator
        if annotator is not None and self.selector.records_itself:
            self.journal.emit(
                "ranking_received",
                iteration=iteration,
                annotator=annotator,
                order=ranking,
                final=final,
                labels=self._labels([t.id for t in trained]) if final else None,
            )
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

    def _labels(self, ids: list[str]) -> dict[str, str] | None:
        """The neutral labels a blind answer to this question showed (label to id)."""
        for r in reversed(self.journal.store.rankings()):
            if sorted(r.candidates) == sorted(ids):
                return r.labels
        return None

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
