"""The feedback seam: what the next sampling prompt is built from, chosen by name.

A :class:`Feedback` turns the :class:`Material` of the iterations so far into the messages
that follow the opening of the next sampling prompt: ``reflection`` (Eureka's reward
reflection, :mod:`.reflection`) or ``preference`` (ICPL, :mod:`.preference`), and any a
package announces in the entry-point group ``eureka_lab.feedback``. The helpers here
format what both show (numbers, series, behaviour, the table of attempts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eureka_lab.core.plugins import FEEDBACK
from eureka_lab.core.statistics import Estimate
from eureka_lab.core.text import safe_text
from eureka_lab.evaluation.evaluator import choose
from eureka_lab.prompt.conversation import Message
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.behaviour_text import ends_text, num
from eureka_lab.runs.records import Behaviour, Checkpoint, Ranking
from eureka_lab.runs.scores import Trained, Tried

MAX_TRIED = 16
"""Rows of the table of recent attempts."""


def fmt(x: float | None) -> str:
    """A number as the prompts show it (:func:`~eureka_lab.runs.behaviour_text.num`), or
    n/a."""
    return "n/a" if x is None else num(x)


def sample(steps: Sequence[int], samples: int) -> list[int]:
    """Which of the checkpoints at ``steps`` a prompt shows: at most ``samples`` of them,
    the first and the last always, the others nearest to evenly spaced steps in between.
    Spacing by step, not by place in the list, drops a checkpoint that nearly repeats its
    neighbour (the end of training, a rollout after the last regular checkpoint) rather
    than one from the middle."""
    n = len(steps)
    if n <= samples:
        return list(range(n))
    at = np.asarray(steps, dtype=np.float64)
    targets = np.linspace(at[0], at[-1], samples)
    return sorted({int(np.argmin(np.abs(at - t))) for t in targets} | {0, n - 1})


def series(values: list[float | None], idx: Sequence[int]) -> dict[str, Any]:
    """A value at each checkpoint as the prompts show it: its values at the checkpoints
    ``idx`` (see :func:`sample`), and its max, mean and min over all of them."""
    known = [v for v in values if v is not None]
    return {
        "trace": "[" + ", ".join(fmt(values[i]) for i in idx) + "]",
        "max": fmt(max(known)) if known else "n/a",
        "mean": fmt(float(np.mean(known))) if known else "n/a",
        "min": fmt(min(known)) if known else "n/a",
        "raw": values,
    }


def behaviour_view(behaviour: Behaviour | None) -> dict[str, Any] | None:
    """The behaviour summary with numbers formatted for the template."""
    if behaviour is None:
        return None
    b = behaviour
    return {
        "episodes": b.episodes,
        "length": fmt(b.length),
        "terminated": b.terminated,
        "truncated": b.truncated,
        "ends": ends_text(b),
        "signals": [
            {
                "name": s.name,
                **{k: fmt(getattr(s, k)) for k in ("start", "end", "min", "max", "mean")},
            }
            for s in b.signals
        ],
        "action_magnitude": None if b.action_magnitude is None else fmt(b.action_magnitude),
        "action_at_limits": None
        if b.action_at_limits is None
        else f"{100 * b.action_at_limits:.0f}%",
        "events": [
            {"kind": e.kind, "episodes": e.episodes, "step": fmt(e.step), "value": fmt(e.value)}
            for e in b.events
        ],
    }


@dataclass(frozen=True)
class Material:
    """What the next prompt can be built from."""

    ranked: Sequence[Trained]
    """Trained candidates to learn from, best first (the run's best first, then the last
    iteration's in the selector's order)."""
    responses: dict[str, str]
    """The model's answer of each of them, by id."""
    tried: Sequence[Tried] = field(default_factory=list)
    """Every candidate of recent iterations, oldest first."""
    codes: dict[str, str] = field(default_factory=dict)
    """The reward code of each ranked candidate, by id."""
    rankings: Sequence[Ranking] = field(default_factory=list)
    """The preference queries so far, oldest first (for preference-driven feedback)."""
    noise: float | None = None
    """How much one reward's score varies from seed to seed in this run
    (:meth:`~eureka_lab.runs.scores.Scores.noise`; None before any reward trained on
    several seeds)."""


class Feedback:
    """Builds the messages that follow the opening of the next sampling prompt."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        raise NotImplementedError


WITHIN_NOISE = 2.0
"""A gap to the best smaller than this many times its standard error is within noise."""
MOVED = 3
"""Behaviour entries that moved most, in a table row's compact behaviour line."""


def chosen(checkpoints: Sequence[Checkpoint], best_step: int | None) -> dict[str, Any] | None:
    """The checkpoint chosen as a training's policy (at ``best_step``; else as the evaluator
    chooses), and whether its score was tied: ``tie`` is None, or says with how many other
    checkpoints (``others``; ``every`` when all were) at which score, and what broke the tie
    (``by``: the env's own ``return``, or the later ``step``)."""
    if not checkpoints:
        return None
    at = next((c for c in checkpoints if c.step == best_step), None) or choose(checkpoints)
    tie = None
    scored = [c for c in checkpoints if c.fitness is not None]
    tied = [c for c in scored if c is not at and c.fitness == at.fitness]
    if at.fitness is not None and tied:
        same = [c for c in tied if c.eval_env_return == at.eval_env_return]
        tie = {
            "others": len(tied),
            "every": len(tied) == len(scored) - 1,
            "score": fmt(at.fitness),
            "by": "step" if same else "return",
            "last": at.step == checkpoints[-1].step,
        }
    return {"step": at.step, "checkpoint": at, "tie": tie}


def compact_behaviour(behaviour: Behaviour | None) -> dict[str, Any] | None:
    """What a table row says of a policy: its events and episode ends, and the first few
    entries that moved (in the evaluator's order: the body's root first)."""
    view = behaviour_view(behaviour)
    if view is None or behaviour is None:
        return None
    moved = []
    for s in behaviour.signals:
        if abs(s.end - s.start) > max(1e-9, 0.01 * max(abs(s.start), abs(s.end))):
            moved.append({"name": s.name, "start": fmt(s.start), "end": fmt(s.end)})
        if len(moved) == MOVED:
            break
    return {**view, "moved": moved}


def _spread(estimate: Estimate, noise: float | None) -> float | None:
    """What one seed's score of this estimate is uncertain by: its own spread across seeds,
    else the run's seed-to-seed noise."""
    return estimate.std if estimate.std is not None else noise


def within_noise(a: Estimate, b: Estimate, noise: float | None) -> bool | None:
    """Whether the gap between two scores is within noise: smaller than
    :data:`WITHIN_NOISE` times its standard error (each side's spread, or the run's noise
    for a side with one seed); None where a spread is unknown."""
    sa, sb = _spread(a, noise), _spread(b, noise)
    if sa is None or sb is None:
        return None
    se = math.sqrt(sa**2 / a.seeds + sb**2 / b.seeds)
    return abs(a.mean - b.mean) < WITHIN_NOISE * se or a.mean == b.mean


def score_view(estimate: Estimate | None) -> dict[str, Any] | None:
    """A score as the prompts state it: the held-out mean, its spread across seeds (None
    with one seed), the seeds and the held-out episodes of each."""
    if estimate is None:
        return None
    return {
        "mean": fmt(estimate.mean),
        "std": None if estimate.std is None else fmt(estimate.std),
        "seeds": estimate.seeds,
        "episodes": estimate.episodes,
    }


def signed(x: float) -> str:
    return f"+{fmt(x)}" if x > 0 else fmt(x)


def tried_rows(
    tried: Sequence[Tried], best: Trained, noise: float | None = None
) -> list[dict[str, Any]]:
    """The table of attempts, best score first, failures last, bounded: each score with
    its spread and what it rests on, its gap to the best and whether that is within noise,
    and, for the last iteration's attempts, what their policy did. Where rows must be cut,
    the best and the last iteration's attempts are kept first."""
    ref = best.estimate
    last = max((t.iteration for t in tried), default=None)
    rows: list[tuple[bool, float | None, dict[str, Any]]] = []
    for t in tried:
        est = t.estimate
        gap = within = None
        if est is not None and ref is not None and t.id != best.id:
            gap = signed(est.mean - ref.mean)
            within = within_noise(est, ref, noise)
        at = chosen(t.checkpoints, t.best_step) if t.iteration == last else None
        keep = t.id == best.id or t.iteration == last
        order = est.mean if est is not None else None
        rows.append(
            (
                keep,
                order,
                {
                    "id": t.id,
                    "idea": t.idea or "-",
                    "components": ", ".join(t.components) or "-",
                    "status": t.status,
                    "score": score_view(est),
                    "best": t.id == best.id,
                    "gap": gap,
                    "within": within,
                    "behaviour": None
                    if at is None or t.id == best.id
                    else compact_behaviour(at["checkpoint"].behaviour),
                    "step": None if at is None else at["step"],
                    "tie": None if at is None else at["tie"],
                    "reason": safe_text(t.reason or "", 120),
                },
            )
        )

    def by_score(row: tuple[bool, float | None, dict[str, Any]]) -> tuple[bool, float]:
        return (row[1] is None, -(row[1] or 0.0))

    kept = sorted(rows, key=lambda r: (not r[0], *by_score(r)))[:MAX_TRIED]
    return [row for _, _, row in sorted(kept, key=by_score)]


def make_feedback(name: str) -> Feedback:
    """The feedback mode registered as ``name``."""
    feedback: Feedback = FEEDBACK.get(name)()
    return feedback


def component_means(checkpoints: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each component's mean at each checkpoint (for LLM-free backends)."""
    names = sorted({n for c in checkpoints for n in c["components"]})
    return {
        n: [c["components"][n]["mean"] for c in checkpoints if n in c["components"]] for n in names
    }
