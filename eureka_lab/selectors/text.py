"""A person ranks at the terminal, without a browser (Eureka-HF's plain-language critique)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.text import safe_text
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import Selector
from eureka_lab.selectors.human import recorded_order


class TextSelector(Selector):
    """A person without a browser ranks at the terminal: each candidate is listed with what
    its policy did and where its video is; they name the most and the least preferred and
    may add a critique (Eureka-HF's plain-language feedback)."""

    annotator = "person (terminal)"
    records_itself = True
    prefers_newest = True
    feedback = "preference"
    needs_fitness = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.store: RunStore | None = None
        self.task = ""

    def attach(
        self, store: RunStore, task: str, announce: Callable[[str], None] | None = None
    ) -> None:
        self.store, self.task = store, task

    def _ask(self, question: str, allowed: set[str]) -> str:
        for _ in range(20):
            answer = input(question).strip()
            if answer in allowed:
                return answer
            print(f"please answer one of: {', '.join(sorted(allowed))}")
        raise ConfigError("No valid answer at the terminal; stopping (resume to try again).")

    def rank(self, trained: Sequence[Trained]) -> list[list[str]]:
        if self.store is None:
            raise ConfigError("The text selector needs a run store (the loop attaches it).")
        ids = [t.id for t in trained]
        recorded = recorded_order(self.store, self.annotator, ids)
        if recorded is not None:
            return recorded
        iteration = max(t.candidate.iteration for t in trained)
        print(f"\nTask: {safe_text(self.task, 500)}\nIteration {iteration}: the candidates")
        for i, t in enumerate(trained, start=1):
            video = self.store.video_path(t.id)
            at = next((c for c in t.checkpoints if c.step == t.result.best_step), None)
            events = ", ".join(e.kind for e in at.behaviour.events) if at and at.behaviour else ""
            print(
                f"  {i}. {t.id}: components {safe_text(', '.join(t.candidate.components), 200)}"
                + (f"; {events}" if events else "")
                + (f"; video {video}" if video else "")
            )
        numbers = {str(i) for i in range(1, len(ids) + 1)}
        best = ids[int(self._ask("most preferred (number): ", numbers)) - 1]
        rest = numbers - {str(ids.index(best) + 1)}
        answer = self._ask("least preferred (number, Enter if none): ", rest | {""})
        worst = ids[int(answer) - 1] if answer else None
        critique = input("your critique for the next rewards (Enter for none): ").strip()
        middle = [c for c in ids if c not in (best, worst)]
        order = [[best]] + ([middle] if middle else []) + ([[worst]] if worst else [])
        ranking = Ranking(
            annotator=self.annotator,
            time=time.time(),
            iteration=iteration,
            candidates=ids,
            order=order,
            overall=safe_text(critique, 2000) if critique else None,
        )
        return self.store.append_ranking(ranking).order  # an answer given meanwhile stands
