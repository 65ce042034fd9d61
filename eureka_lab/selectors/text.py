"""A person ranks at the terminal, without a browser (Eureka-HF's plain-language critique)."""

from __future__ import annotations

import random
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.text import safe_text
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import VERDICT_QUESTION, Announce, Selector, verdict_roles
from eureka_lab.selectors.human import recorded_order
from eureka_lab.selectors.page import behaviour_line


class TextSelector(Selector):
    """A person without a browser ranks at the terminal: each candidate is listed with what
    its policy did and where its video is; they name the most and the least preferred and
    may add a critique (Eureka-HF's plain-language feedback). The final verdict is blind:
    the two policies as A and B in a random order, their videos copied under those names."""

    annotator = "person (terminal)"
    records_itself = True
    prefers_newest = True
    feedback = "preference"
    needs_fitness = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.store: RunStore | None = None
        self.task = ""
        self.announce: Announce | None = None

    def attach(self, store: RunStore, task: str, announce: Announce | None = None) -> None:
        self.store, self.task, self.announce = store, task, announce

    def _ask(self, question: str, allowed: set[str]) -> str:
        for _ in range(20):
            answer = input(question).strip()
            if answer in allowed:
                return answer
            print(f"please answer one of: {', '.join(sorted(a or 'Enter' for a in allowed))}")
        raise ConfigError("No valid answer at the terminal; stopping (resume to try again).")

    def _store(self) -> RunStore:
        if self.store is None:
            raise ConfigError("The text selector needs a run store (the loop attaches it).")
        return self.store

    def rank(self, trained: Sequence[Trained]) -> list[list[str]]:
        store = self._store()
        ids = [t.id for t in trained]
        recorded = recorded_order(store, self.annotator, ids)
        if recorded is not None:
            return recorded
        if self.announce is not None:
            self.announce("")  # recorded: the run waits for this person's answer
        iteration = max(t.candidate.iteration for t in trained)
        print(f"\nTask: {safe_text(self.task, 500)}\nIteration {iteration}: the candidates")
        for i, t in enumerate(trained, start=1):
            video = store.video_path(t.id)
            did = behaviour_line(t)
            print(
                f"  {i}. {t.id}: components {safe_text(', '.join(t.candidate.components), 200)}"
                + (f"\n     what it did: {safe_text(did, 300)}" if did else "")
                + (f"\n     video {video}" if video else "")
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
        return store.append_ranking(ranking).order  # an answer given meanwhile stands

    def judge(self, best: Trained, human: Trained) -> list[list[str]]:
        store = self._store()
        ids = [best.id, human.id]
        recorded = recorded_order(store, self.annotator, ids)
        if recorded is not None:
            return recorded
        if self.announce is not None:
            self.announce("", VERDICT_QUESTION)
        seed = secrets.randbits(31)
        shown = [best, human]
        random.Random(seed).shuffle(shown)
        labels = dict(zip("AB", (t.id for t in shown), strict=True))
        print(f"\n{VERDICT_QUESTION}\nTask: {safe_text(self.task, 500)}")
        print(
            "A and B are the run's best reward and the task's human reward, in a random "
            "order; which is which is said after you answer."
        )
        with tempfile.TemporaryDirectory(prefix="eureka-verdict-") as folder:
            for label, t in zip("AB", shown, strict=True):
                video = store.video_path(t.id)
                if video is not None:
                    copy = Path(folder) / f"{label}.mp4"
                    shutil.copyfile(video, copy)
                print(f"  {label}: " + (f"video {copy}" if video is not None else "no video"))
            answer = self._ask(
                "which is better (A or B; Enter if you can't tell): ", {"A", "B", ""}
            )
        critique = input("a comment (Enter for none): ").strip()
        order = [[labels[answer]], [labels["B" if answer == "A" else "A"]]] if answer else [ids]
        ranking = Ranking(
            annotator=self.annotator,
            time=time.time(),
            iteration=best.candidate.iteration,
            candidates=[t.id for t in shown],
            order=order,
            overall=safe_text(critique, 2000) if critique else None,
            cant_tell=not answer,
            labels=labels,
            shuffle_seed=seed,
        )
        roles = verdict_roles(best, human)
        print("  " + "; ".join(f"{k} was {roles[v]}" for k, v in labels.items()))
        return store.append_ranking(ranking).order
