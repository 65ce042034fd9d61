"""Typed, read-only views of a run for scripts and notebooks: :func:`load_run`.

Works on a finished run and on one still in progress (or killed): whatever the run store
holds is shown, nothing is computed again::

    run = eureka_lab.load_run("runs/20261122-013731-mountain_car")
    run.best.code, run.best.fitness
    [c.id for c in run.candidates if c.status == "failed"]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from eureka_lab.conversation import Message, Usage
from eureka_lab.loop import LoopConfig
from eureka_lab.records import Candidate as CandidateRecord
from eureka_lab.records import Checkpoint, Iteration, RunSummary, TrainingResult
from eureka_lab.store import RunStore, completion_from_dict, messages_from_dicts
from eureka_lab.task import Task


@dataclass(frozen=True)
class Candidate:
    """One candidate of a run: its code, what the model was asked, and what training showed."""

    store: RunStore
    record: CandidateRecord

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def iteration(self) -> int:
        return self.record.iteration

    @property
    def parent(self) -> str | None:
        """The candidate this one repairs, if it is a repair."""
        return self.record.parent

    @cached_property
    def result(self) -> TrainingResult | None:
        return self.store.result(self.id)

    @property
    def status(self) -> str:
        """``trained``, ``failed``, ``duplicate``, or where it stopped (``valid``: not yet
        trained)."""
        return self.result.status if self.result else self.record.status

    @property
    def stage(self) -> str | None:
        """Where a failed candidate failed (model, parse, policy, validation, training)."""
        return self.record.stage or (self.result.stage if self.result else None)

    @property
    def error(self) -> str | None:
        """Why it failed (None unless it did)."""
        if self.status != "failed":
            return None
        return self.record.reason or (self.result.reason if self.result else None)

    @property
    def fitness(self) -> float | None:
        return self.result.fitness if self.result else None

    @property
    def success(self) -> float | None:
        """Success rate of its best checkpoint, where the task defines success."""
        return self.result.success_rate if self.result else None

    @property
    def components(self) -> list[str]:
        return self.record.components or (self.result.components if self.result else [])

    @cached_property
    def code(self) -> str | None:
        return self.store.reward_code(self.id)

    @cached_property
    def response(self) -> str | None:
        """The model's whole answer."""
        return self.store.response(self.id)

    @cached_property
    def checkpoints(self) -> list[Checkpoint]:
        return self.store.checkpoints(self.id)

    @property
    def policy_path(self) -> Path | None:
        """The best checkpoint's policy (safetensors), for loading in your own code."""
        return self.store.policy_path(self.id)

    @cached_property
    def _request(self) -> dict[str, Any] | None:
        r = self.record
        key = (
            f"iter_{r.iteration:02d}-repair-{r.index:02d}-r{r.repair}"
            if r.repair
            else f"iter_{r.iteration:02d}-sample"
        )
        return self.store.request(key)

    @property
    def prompt(self) -> tuple[Message, ...]:
        """The conversation the model answered with this candidate."""
        req = self._request
        return messages_from_dicts(req["messages"]) if req else ()

    @property
    def usage(self) -> Usage:
        """Tokens and cost of this candidate's answer."""
        req = self._request
        index = 0 if self.record.repair else self.record.index
        if not req or index >= len(req["completions"]):
            return Usage()
        return completion_from_dict(req["completions"][index]).usage

    def __repr__(self) -> str:
        fit = "-" if self.fitness is None else f"{self.fitness:.3g}"
        return f"<Candidate {self.id} {self.status} fitness={fit}>"


class Run:
    """A run directory, read through the run store's typed API."""

    def __init__(self, path: str | Path) -> None:
        self.store = RunStore.open(path)
        self.path = self.store.root

    @cached_property
    def config(self) -> LoopConfig:
        """The loop settings the run last ran with."""
        return LoopConfig(**self.store.config.get("loop", {}))

    @cached_property
    def llm(self) -> dict[str, Any]:
        """The model backend and its settings (never the API key)."""
        cfg = self.store.config
        return {"backend": cfg.get("llm"), **cfg.get("llm_settings", {})}

    @cached_property
    def task(self) -> Task:
        return Task.model_validate(self.store.config["task"])

    @property
    def iterations(self) -> list[Iteration]:
        """The finished iterations, in order."""
        return [r for r in (self.store.iteration(i) for i in self.store.iterations()) if r]

    @property
    def candidates(self) -> list[Candidate]:
        return [Candidate(self.store, c) for c in self.store.candidates()]

    def candidate(self, cid: str) -> Candidate:
        record = self.store.candidate(cid)
        if record is None:
            known = ", ".join(c.id for c in self.store.candidates()[:8])
            raise KeyError(f"no candidate {cid!r} in {self.path} (candidates: {known}, ...)")
        return Candidate(self.store, record)

    @property
    def summary(self) -> RunSummary | None:
        """The final comparison; None until the run has finished."""
        return self.store.summary()

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def best(self) -> Candidate | None:
        """The run's best candidate: the final one when finished, else the best iteration
        best so far by fitness (None before any candidate trained)."""
        if self.summary is not None:
            return self.candidate(self.summary.best)
        bests = [self.candidate(it.best) for it in self.iterations if it.best]
        scored = [c for c in bests if c.fitness is not None]
        return max(reversed(scored), key=lambda c: c.fitness) if scored else None  # type: ignore[arg-type,return-value]

    @property
    def usage(self) -> Usage:
        return self.store.usage()

    def __repr__(self) -> str:
        state = "finished" if self.finished else "unfinished"
        return f"<Run {self.path.name} task={self.task.name} {state}>"


def load_run(path: str | Path) -> Run:
    """Open a run directory (finished, in progress, or stopped) for reading."""
    return Run(path)
