"""One view of what every candidate scored, read from the run store: what the selector
ranks (:class:`Trained`, with its score as an :class:`~eureka_lab.core.statistics.Estimate`
over the seeds it trained on), and the table of attempts the feedback shows
(:class:`Tried`). ``show``, the report and the loop read the same view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eureka_lab.core.statistics import Estimate, seed_noise
from eureka_lab.core.text import safe_name
from eureka_lab.runs.records import Candidate, Checkpoint, TrainingResult
from eureka_lab.runs.store import RunStore, seed_id


@dataclass(frozen=True)
class Trained:
    """A candidate that trained, with what training and evaluation showed: ``result`` and
    ``checkpoints`` of its first training, ``estimate`` over every seed it trained on."""

    candidate: Candidate
    result: TrainingResult
    checkpoints: list[Checkpoint] = field(default_factory=list)
    estimate: Estimate | None = None
    """Its score over training seeds (None for a task without a fitness)."""

    @property
    def id(self) -> str:
        return self.candidate.id

    @property
    def score(self) -> float | None:
        """The estimate's mean: what the candidate scored, over its seeds."""
        return None if self.estimate is None else self.estimate.mean


@dataclass(frozen=True)
class Tried:
    """One candidate as the table of attempts shows it, whatever became of it."""

    id: str
    iteration: int
    idea: str
    components: list[str]
    status: str
    fitness: float | None
    reason: str | None = None
    estimate: Estimate | None = None
    """The score over its seeds, where it trained."""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    """Its first training's checkpoints, where it trained."""
    best_step: int | None = None
    """The step of the checkpoint chosen as its policy."""


IDEA_CHARS = 120
"""The longest idea the table of attempts shows."""
_FENCES = ("```", "~~~")
_DECORATION = " \t#*>-_`"


def idea_of(response: str) -> str:
    """What an answer says its reward does differently: its ``Idea: ...`` line (any case,
    outside code blocks), else its first line of prose that is not a heading or a lead-in
    (``Analysis of the feedback:``); one line, bounded and escaped. Linear in the answer's
    length: each line is read once, and only its first few characters are matched."""
    fallback = ""
    fenced = False
    for raw in response.splitlines():
        start = raw.lstrip()
        if start.startswith(_FENCES):
            fenced = not fenced
            continue
        if fenced or not start:
            continue
        head = start[:24].lstrip(_DECORATION)
        label, colon, _ = head.partition(":")
        if colon and label.rstrip(_DECORATION).lower() == "idea":
            idea = start[start.index(":") + 1 :].strip(_DECORATION)
            if idea:
                return safe_name(idea, IDEA_CHARS)
            continue
        if not fallback and not _heading(start):
            line = start.strip(_DECORATION)
            if len(line) > 8:
                fallback = line
    return safe_name(fallback, IDEA_CHARS) if fallback else ""


def _heading(line: str) -> bool:
    """A markdown heading, a bold title, a lead-in ending in a colon, or an analysis's
    opening (``Analysis of the feedback``, ``Analyzing the results``)."""
    bare = line.rstrip()
    return (
        bare.startswith("#")
        or (bare.startswith("**") and bare.endswith("**"))
        or bare.rstrip("*_ ").endswith(":")
        or bare.lstrip(_DECORATION)[:5].lower() == "analy"
    )


class Scores:
    """What the run store says each candidate scored."""

    def __init__(self, store: RunStore, timesteps: int, seed: int = 0) -> None:
        self.store = store
        self.timesteps = timesteps
        """The full training budget (a candidate stopped before it is marked so)."""
        self.seed = seed
        """The search's seed: every candidate's first training."""

    @classmethod
    def of(cls, store: RunStore) -> Scores:
        """The scores of a run, from the settings it recorded."""
        config = store.config
        loop = config.get("loop", {})
        timesteps = loop.get("timesteps") or config.get("task", {}).get("timesteps") or 0
        return cls(store, int(timesteps), int(loop.get("seed", 0)))

    def trained(self, cid: str, seeds: Sequence[int] | None = None) -> Trained | None:
        """``cid`` if it trained, with its result, checkpoints and estimate (over
        ``seeds``; default every seed it trained on); else None."""
        cand, result = self.store.candidate(cid), self.store.result(cid)
        if cand is None or result is None or result.status != "trained":
            return None
        return Trained(cand, result, self.store.checkpoints(cid), self.estimate(cid, seeds))

    def seed_results(self, cid: str) -> dict[int, TrainingResult]:
        """Every training of ``cid`` that produced a score, by seed."""
        found = {self.seed: self.store.result(cid)}
        found.update({s: self.store.result(seed_id(cid, s)) for s in self.store.seeds(cid)})
        return {
            s: r
            for s, r in found.items()
            if r is not None and r.status == "trained" and r.fitness is not None
        }

    def estimate(self, cid: str, seeds: Sequence[int] | None = None) -> Estimate | None:
        """``cid``'s score over ``seeds`` (default: every seed it trained on), or None
        where it has none on them."""
        results = self.seed_results(cid)
        chosen = sorted(results) if seeds is None else [s for s in seeds if s in results]
        values = [results[s].fitness for s in chosen]
        if not values:
            return None
        return Estimate(tuple(float(v) for v in values if v is not None), _episodes(results))

    def noise(self) -> float | None:
        """How much one reward's score varies from seed to seed in this run, pooled over
        the candidates trained on several seeds (None before any was)."""
        groups = []
        for cand in self.store.candidates():
            if self.store.seeds(cand.id):
                groups.append([r.fitness for r in self.seed_results(cand.id).values()])
        return seed_noise([[float(v) for v in g if v is not None] for g in groups])

    def all_trained(self, ids: Iterable[str], seeds: Sequence[int] | None = None) -> list[Trained]:
        """Those of ``ids`` that trained, in order (estimates over ``seeds``, default every
        seed each trained on)."""
        return [t for t in (self.trained(c, seeds) for c in ids) if t is not None]

    def ranked(self, iteration: int, skip: str | None = None) -> list[Trained]:
        """Iteration ``iteration``'s trained candidates in its ranking's order, but
        ``skip``."""
        record = self.store.iteration(iteration) if iteration >= 0 else None
        ids = [cid for group in (record.ranking if record else []) for cid in group]
        return self.all_trained(c for c in ids if c != skip)

    def tried(self, iterations: Iterable[int]) -> list[Tried]:
        """Every candidate of ``iterations``, as the table of attempts shows it."""
        out = []
        for it in iterations:
            for cand in self.store.candidates(it):
                result = self.store.result(cand.id)
                status: str = result.status if result else cand.status
                if result is not None and result.stopped_at is not None:
                    status = (
                        f"stopped early, scored at {result.stopped_at:,} of "
                        f"{self.timesteps:,} steps"
                    )
                failed = status == "failed"
                out.append(
                    Tried(
                        id=cand.id,
                        iteration=it,
                        idea=idea_of(self.store.response(cand.id) or ""),
                        components=cand.components,
                        status=status,
                        fitness=result.fitness if result else None,
                        reason=(cand.reason or (result.reason if result else None))
                        if failed
                        else None,
                        estimate=self.estimate(cand.id) if not failed else None,
                        checkpoints=self.store.checkpoints(cand.id) if not failed else [],
                        best_step=result.best_step if result else None,
                    )
                )
        return out


def _episodes(results: dict[int, TrainingResult]) -> int:
    """Held-out episodes behind each seed's score (the fewest, where they differ)."""
    counts = [r.eval_episodes for r in results.values() if r.eval_episodes]
    return min(counts) if counts else 0
