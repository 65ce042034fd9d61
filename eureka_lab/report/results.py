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

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.statistics import Estimate
from eureka_lab.prompt.conversation import Message, Usage
from eureka_lab.report import plots
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.formats import completion_from_dict, messages_from_dicts
from eureka_lab.runs.records import Candidate as CandidateRecord
from eureka_lab.runs.records import Checkpoint, Iteration, RunSummary, TrainingResult
from eureka_lab.runs.scores import Scores
from eureka_lab.runs.store import RunStore
from eureka_lab.task.model import Task


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

    @cached_property
    def estimate(self) -> Estimate | None:
        """Its score over the seeds it trained on (each a held-out mean), with the spread."""
        return Scores.of(self.store).estimate(self.id) if self.result else None

    @property
    def fitness(self) -> float | None:
        """Its score: the mean over its training seeds of each seed's held-out score."""
        if self.estimate is not None:
            return self.estimate.mean
        return self.result.fitness if self.result else None

    @property
    def fitness_std(self) -> float | None:
        """The score's spread over training seeds (None with one seed)."""
        return self.estimate.std if self.estimate else None

    @property
    def seeds(self) -> int:
        """Training seeds its score rests on (0 if it has none)."""
        return self.estimate.seeds if self.estimate else 0

    @property
    def score_text(self) -> str:
        """``2.08 ± 1.64 (8 seeds × 5 episodes)``, or ``-``."""
        if self.estimate is not None:
            return self.estimate.text()
        return "-" if self.fitness is None else f"{self.fitness:.3g}"

    @property
    def success(self) -> float | None:
        """Success rate of its best checkpoint, where the task defines success."""
        return self.result.success_rate if self.result else None

    @property
    def steps(self) -> int:
        """Env steps its policy was trained for (0 if it was not trained)."""
        return self.result.steps if self.result else 0

    @property
    def spent_steps(self) -> int:
        """Env steps spent training it, over every round (more than ``steps`` where a
        trainer that cannot continue started a round of halving again)."""
        return self.result.spent if self.result else 0

    @property
    def stopped_at(self) -> int | None:
        """Where successive halving stopped its training (steps), if it did."""
        return self.result.stopped_at if self.result else None

    @property
    def components(self) -> list[str]:
        return self.record.components or (self.result.components if self.result else [])

    @cached_property
    def code(self) -> str | None:
        return self.store.reward_code(self.id)

    @cached_property
    def response(self) -> str | None:
        """The model's answer (cut after ``parsing.MAX_ANSWER_CHARS`` characters)."""
        return self.store.response(self.id)

    @cached_property
    def checkpoints(self) -> list[Checkpoint]:
        return self.store.checkpoints(self.id)

    @property
    def video_path(self) -> Path | None:
        """The rollout video of its best policy (mp4), where one was recorded."""
        return self.store.video_path(self.id)

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

    @property
    def based_on(self) -> str | None:
        """The best candidate whose answer and feedback this one's prompt carried."""
        return self.record.based_on

    def plot_components(self, ax: Any = None) -> Any:
        """Each reward component over training, with the task score (a Figure)."""
        return plots.components(self, ax)

    def __repr__(self) -> str:
        return f"<Candidate {self.id} {self.status} score {self.score_text}>"

    def _repr_html_(self) -> str:
        from eureka_lab.report import notebook as h

        facts = [
            ("status", h.esc(self.status)),
            ("task score", h.esc(self.score_text)),
            ("success", "-" if self.success is None else f"{100 * self.success:.0f}%"),
            ("components", h.esc(", ".join(self.components) or "-")),
            ("tokens", str(self.usage.prompt_tokens + self.usage.completion_tokens)),
        ]
        if self.error:
            facts.append(("error", h.esc(self.error, 500)))
        if self.parent or self.based_on:
            facts.append(("from", h.esc(self.parent or self.based_on)))
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
        body = h.code(self.code) if self.code else "<p>(no code)</p>"
        return h.notebook(f"<h4>{h.esc(self.id)}</h4><table>{rows}</table>{body}")


class Run:
    """A run directory, read through the run store's typed API."""

    def __init__(self, path: str | Path) -> None:
        self.store = RunStore.open(path, lenient=True)  # a run may be someone else's
        self.path = self.store.root

    @cached_property
    def config(self) -> LoopConfig:
        """The loop settings the run last ran with."""
        return LoopConfig.from_record(self.store.config.get("loop", {}))

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
            record = self.store.candidate(self.summary.best)
            return Candidate(self.store, record) if record is not None else None
        bests = [self.candidate(it.best) for it in self.iterations if it.best]
        scored = [(c.fitness, c) for c in bests if c.fitness is not None]
        return max(reversed(scored), key=lambda fc: fc[0])[1] if scored else None

    @property
    def usage(self) -> Usage:
        return self.store.usage()

    def lineage(self, candidate: Candidate | str) -> list[Candidate]:
        """The chain that led to ``candidate``: itself, the candidates it repairs, and the
        bests whose feedback each sampling prompt carried, newest first."""
        chain: list[Candidate] = []
        cur: Candidate | None = (
            self.candidate(candidate) if isinstance(candidate, str) else candidate
        )
        while cur is not None and cur.id not in {c.id for c in chain}:
            chain.append(cur)
            nxt = cur.parent or cur.based_on
            cur = self.candidate(nxt) if nxt else None
        return chain

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per candidate: iteration, status, stage, fitness,
        success, steps, stopped_at, parent, based_on, components, tokens and cost."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(
                'run.to_frame() needs pandas: pip install "eureka-lab[notebook]" (or pandas).'
            ) from None
        rows = []
        for c in self.candidates:
            u = c.usage
            rows.append(
                {
                    "id": c.id,
                    "iteration": c.iteration,
                    "status": c.status,
                    "stage": c.stage,
                    "fitness": c.fitness,
                    "fitness_std": c.fitness_std,
                    "seeds": c.seeds,
                    "success": c.success,
                    "steps": c.steps,
                    "stopped_at": c.stopped_at,
                    "parent": c.parent,
                    "based_on": c.based_on,
                    "components": ", ".join(c.components),
                    "tokens": u.prompt_tokens + u.completion_tokens,
                    "cost_usd": u.cost_usd,
                }
            )
        return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()

    def plot_fitness(self, ax: Any = None) -> Any:
        """Every candidate per iteration, and the best so far (a Figure)."""
        return plots.fitness(self.task.name, self.candidates, ax)

    def plot_final(self, ax: Any = None) -> Any:
        """The final comparison of best, human and sparse rewards, per seed (a Figure)."""
        return plots.final(self.summary, ax)

    def __repr__(self) -> str:
        state = "finished" if self.finished else "unfinished"
        return f"<Run {self.path.name} task={self.task.name} {state}>"

    def _repr_html_(self) -> str:
        from eureka_lab.report import notebook as h

        best = self.best.id if self.best else None
        rows = [
            [
                h.esc(c.id) + (" <b>(best)</b>" if c.id == best else ""),
                h.esc(c.status),
                h.num(c.fitness),
                "-" if c.success is None else f"{100 * c.success:.0f}%",
                h.esc(", ".join(c.components), 300),
                h.esc(c.error or "", 200),
            ]
            for c in self.candidates
        ]
        head = (
            f"<p><b>{h.esc(self.path.name)}</b>: task {h.esc(self.task.name)}, "
            f"{'finished' if self.finished else 'unfinished'}</p>"
        )
        cols = ["candidate", "status", "task score", "success", "components", "error"]
        return h.notebook(head + h.table(cols, rows))


@dataclass(frozen=True)
class Diff:
    """What changed between two candidates' rewards."""

    a: str
    b: str
    text: str
    """A unified diff of the code."""
    added: list[str]
    removed: list[str]
    rescaled: dict[str, float]
    """Components in both whose mean magnitude at the last checkpoint changed by more
    than 1.5x: the ratio b / a."""

    @property
    def same(self) -> bool:
        """Whether the two rewards have the same code (one candidate diffed with itself, or
        two with identical code)."""
        return not self.text

    def summary(self) -> list[str]:
        """What changed, in words: the components added, removed and rescaled, or that the
        code is the same."""
        lines = []
        if self.same:
            lines.append(
                f"{self.a} diffed with itself: no change"
                if self.a == self.b
                else f"{self.a} and {self.b} have the same code"
            )
        if self.added:
            lines.append("added components: " + ", ".join(self.added))
        if self.removed:
            lines.append("removed components: " + ", ".join(self.removed))
        for name, ratio in self.rescaled.items():
            lines.append(f"rescaled: {name} x{ratio:.3g}")
        return lines

    def __str__(self) -> str:
        return "\n".join(([self.text.rstrip()] if self.text else []) + self.summary())

    def _repr_html_(self) -> str:
        from eureka_lab.report import notebook as h

        parts = []
        for line in self.text.splitlines():
            color = {"+": "#e6ffec", "-": "#ffebe9", "@": "#ddf4ff"}.get(line[:1], "")
            style = f' style="background:{color}"' if color else ""
            parts.append(f"<div{style}>{h.esc(line, 500) or '&nbsp;'}</div>")
        code = f'<pre style="font-size:90%">{"".join(parts)}</pre>' if parts else ""
        summary = "\n".join(h.esc(line) for line in self.summary())
        return h.notebook(code + (f"<pre>{summary}</pre>" if summary else ""))


def diff(a: Candidate, b: Candidate) -> Diff:
    """What changed from ``a``'s reward to ``b``'s: a readable unified diff of the code, and
    the components added, removed and rescaled (by their magnitude in training)."""
    import difflib

    text = "".join(
        difflib.unified_diff(
            (a.code or "").splitlines(keepends=True),
            (b.code or "").splitlines(keepends=True),
            fromfile=a.id,
            tofile=b.id,
        )
    )
    ca, cb = set(a.components), set(b.components)

    def scale(c: Candidate) -> dict[str, float]:
        last = c.checkpoints[-1].components if c.checkpoints else {}
        return {n: abs(s.mean) for n, s in last.items()}

    sa, sb = scale(a), scale(b)
    rescaled = {
        n: sb[n] / sa[n]
        for n in sorted(ca & cb)
        if n in sa and n in sb and sa[n] > 1e-12 and not (1 / 1.5 <= sb[n] / sa[n] <= 1.5)
    }
    return Diff(a.id, b.id, text, sorted(cb - ca), sorted(ca - cb), rescaled)


def load_run(path: str | Path) -> Run:
    """Open a run directory (finished, in progress, or stopped) for reading."""
    return Run(path)
