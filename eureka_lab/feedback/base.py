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
from eureka_lab.core.text import safe_text
from eureka_lab.prompt.conversation import Message
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.records import Behaviour, Ranking
from eureka_lab.runs.scores import Trained, Tried

MAX_TRIED = 16
"""Rows of the table of recent attempts."""


def fmt(x: float | None) -> str:
    """A number as the prompts show it, or n/a: a whole number in full (``1000``, never
    ``1e+03``); another to three significant digits, without an exponent from 100 up to a
    million (``987``, ``2235``), where three digits would need one."""
    if x is None:
        return "n/a"
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 1e15 and float(x) == int(x):
        return str(int(x))
    if 100 <= abs(x) < 1e6:
        return f"{x:.0f}"
    return f"{x:.3g}"


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


class Feedback:
    """Builds the messages that follow the opening of the next sampling prompt."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        raise NotImplementedError


def tried_rows(tried: Sequence[Tried], best: Trained) -> list[dict[str, Any]]:
    """The table of attempts, best score first, failures last, bounded."""
    ref = best.result.fitness
    rows = []
    for t in tried:
        versus = None
        if t.fitness is not None and ref is not None:
            versus = "the best" if t.id == best.id else fmt(t.fitness - ref)
        rows.append(
            {
                "id": t.id,
                "idea": t.idea or "-",
                "components": ", ".join(t.components) or "-",
                "status": t.status,
                "score": fmt(t.fitness),
                "versus": versus,
                "reason": safe_text(t.reason or "", 120),
            }
        )
    rows.sort(key=lambda r: (r["score"] == "n/a", -float(r["score"]) if r["score"] != "n/a" else 0))
    return rows[:MAX_TRIED]


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
