"""The ranking page: what it asks a person (:class:`RankingRequest`: one iteration's
candidates, or the blind final verdict), the answer it posts (:class:`Submission`), and its
HTML (``web/``). Served by :mod:`eureka_lab.selectors.human`."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from eureka_lab.core.text import safe_text
from eureka_lab.runs.behaviour_text import short_line
from eureka_lab.runs.records import Ranking
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore


class Submission(BaseModel):
    """What the page posts, exactly: unknown keys are refused and no type is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)

    order: list[list[str]] = Field(default_factory=list)
    """Best first; candidates in one inner list are tied."""
    cant_tell: bool = False
    comments: dict[str, str] = Field(default_factory=dict)
    overall: str | None = None


class AlreadyRanked(Exception):
    """The question was answered already (another post, or the page of another process for
    the same run): the answer on record stands."""


class Refused(Exception):
    """A request the page does not take: the status to answer and a short reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


LABELS = "ABCDEFGHIJ"
"""The neutral names of a blind query's candidates, in the order shown."""


def behaviour_line(t: Trained) -> str | None:
    """What the policy of ``t`` did at its best checkpoint, in one line (the evaluator's
    summary), or None where it has none."""
    at = next((c for c in t.checkpoints if c.step == t.result.best_step), None)
    return short_line(at.behaviour) if at is not None and at.behaviour is not None else None


class RankingRequest:
    """What the page asks a person to rank: one iteration's candidates with their videos.
    A blind one (``blind_seed``: the final verdict) shows them in an order shuffled with
    that seed, under neutral labels (A, B), with nothing that names them: no id, no reward
    components, no behaviour line; the ranking records which label was which."""

    def __init__(
        self,
        store: RunStore,
        iteration: int,
        trained: Sequence[Trained],
        task: str,
        *,
        blind_seed: int | None = None,
        question: str | None = None,
        reveal: dict[str, str] | None = None,
    ):
        shown = list(trained)
        if blind_seed is not None:
            random.Random(blind_seed).shuffle(shown)
        self.store = store
        self.iteration = iteration
        self.ids = [t.id for t in shown]
        """The candidates, in the order shown."""
        self.blind_seed = blind_seed
        self.labels = list(LABELS[: len(shown)]) if blind_seed is not None else list(self.ids)
        """What the page calls each candidate (and posts back): its id, or a neutral label."""
        self.components = {t.id: list(t.candidate.components) for t in shown}
        self.did = {t.id: behaviour_line(t) for t in shown}
        self.task = task
        self.question = question
        self.reveal = reveal or {}
        """Blind: what each candidate was, in words (id to text), told after the answer."""
        self.done = threading.Event()
        self.ranking: Ranking | None = None
        self._answering = threading.Lock()

    @property
    def blind(self) -> bool:
        return self.blind_seed is not None

    def submit(self, posted: Submission, annotator: str) -> Ranking:
        """Record a posted ranking; ValueError where it does not rank exactly the candidates
        shown or names no best (a first group of one) without saying it can't tell them
        apart, AlreadyRanked where the question has an answer already. Either way the
        answer on record is :attr:`ranking`, and the run goes on with it."""
        named = dict(zip(self.labels, self.ids, strict=True))
        if posted.cant_tell:
            order = [list(self.ids)]
        else:
            given = posted.order
            if not all(given) or sorted(c for g in given for c in g) != sorted(self.labels):
                raise ValueError("order must place every candidate exactly once")
            if len(self.ids) > 1 and len(given[0]) != 1:
                raise ValueError(
                    "choose a best: the first group of the order must hold one candidate "
                    "(or say you can't tell them apart: cant_tell true)"
                    if len(given) > 1
                    else "every candidate is tied: choose a best (and a worst), or say you "
                    "can't tell them apart (cant_tell true)"
                )
            order = [[named[c] for c in g] for g in given]
        if not set(posted.comments) <= set(self.labels):
            raise ValueError(
                "comments must be keyed by candidate" + (" label" if self.blind else " id")
            )
        ranking = Ranking(
            annotator=safe_text(annotator, 64),
            time=time.time(),
            iteration=self.iteration,
            candidates=self.ids,
            order=order,
            comments={
                named[k]: safe_text(v, 2000) for k, v in posted.comments.items() if v.strip()
            },
            overall=safe_text(posted.overall, 2000) if posted.overall else None,
            cant_tell=posted.cant_tell,
            labels=named if self.blind else None,
            shuffle_seed=self.blind_seed,
        )
        with self._answering:
            if self.ranking is None:
                self.ranking = self.store.append_ranking(ranking)
                self.done.set()
            if self.ranking is not ranking:
                raise AlreadyRanked("already ranked: the first answer stands")
        return ranking

    def answer(self) -> bytes:
        """What the page is told once its ranking is recorded (blind: which was which)."""
        told = {
            label: self.reveal.get(cid, cid)
            for label, cid in zip(self.labels, self.ids, strict=True)
        }
        return json.dumps({"ok": True, "reveal": told if self.blind else {}}).encode()


def page(request: RankingRequest, token: str) -> bytes:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "web")),
        autoescape=True,  # everything a candidate controls is escaped
        undefined=jinja2.StrictUndefined,
    )
    loop = request.store.config.get("loop", {})
    fps = loop.get("video_fps") if isinstance(loop, dict) else None
    blind = request.blind
    page = env.get_template("rank.html.j2").render(
        task=request.task,
        task_name=str(request.store.config.get("task", {}).get("name", "")),
        iteration=request.iteration,
        blind=blind,
        question=request.question,
        candidates=[
            {
                "index": i,
                "label": label,
                "components": "" if blind else ", ".join(request.components[cid]),
                "did": None if blind else request.did[cid],
            }
            for i, (label, cid) in enumerate(zip(request.labels, request.ids, strict=True))
        ],
        token=token,
        data=json.dumps(
            {
                "labels": request.labels,
                "token": token,
                "blind": blind,
                "fps": fps if isinstance(fps, int) and fps > 0 else 30,
            }
        ),
    )
    return page.encode()
