"""One view of what every candidate scored, read from the run store: what the selector
ranks (:class:`Trained`), the table of attempts the feedback shows (:class:`Tried`), and
what the LLM-free backends learn from. ``show`` and the loop read the same view."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eureka_lab.core.text import safe_text
from eureka_lab.runs.records import Candidate, Checkpoint, TrainingResult
from eureka_lab.runs.store import RunStore


@dataclass(frozen=True)
class Trained:
    """A candidate that trained, with what training and evaluation showed."""

    candidate: Candidate
    result: TrainingResult
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.candidate.id


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


def idea_of(response: str) -> str:
    """The first line of prose in an answer (its idea), bounded."""
    for line in response.split("```")[0].splitlines():
        line = line.strip(" #*-")
        if len(line) > 8:
            return safe_text(line, 100)
    return ""


class Scores:
    """What the run store says each candidate scored."""

    def __init__(self, store: RunStore, timesteps: int) -> None:
        self.store = store
        self.timesteps = timesteps
        """The full training budget (a candidate stopped before it is marked so)."""

    def trained(self, cid: str) -> Trained | None:
        """``cid`` if it trained, with its result and checkpoints; else None."""
        cand, result = self.store.candidate(cid), self.store.result(cid)
        if cand is None or result is None or result.status != "trained":
            return None
        return Trained(cand, result, self.store.checkpoints(cid))

    def all_trained(self, ids: Iterable[str]) -> list[Trained]:
        """Those of ``ids`` that trained, in order."""
        return [t for t in (self.trained(c) for c in ids) if t is not None]

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
                    )
                )
        return out
