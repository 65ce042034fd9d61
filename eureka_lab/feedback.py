"""The feedback seam: what the next sampling prompt is built from, chosen by name.

``reflection`` (Eureka): the best candidate's answer, then its reward reflection: each
component's statistics at the checkpoints, the task score and episode length, and the
observations that drive the advice (computed here, worded in ``prompts/feedback.j2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from eureka_lab.conversation import Message
from eureka_lab.prompting import PromptBook
from eureka_lab.registry import Registry
from eureka_lab.selection import Trained


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _series(values: list[float | None], samples: int) -> dict[str, Any]:
    known = [v for v in values if v is not None]
    idx = np.unique(np.linspace(0, len(values) - 1, min(samples, len(values))).round().astype(int))
    return {
        "trace": "[" + ", ".join(_fmt(values[i]) for i in idx) + "]",
        "max": _fmt(max(known)) if known else "n/a",
        "mean": _fmt(float(np.mean(known))) if known else "n/a",
        "min": _fmt(min(known)) if known else "n/a",
        "raw": values,
    }


def reflection(checkpoints: list[dict[str, Any]], samples: int = 10) -> dict[str, Any]:
    """Template values for ``feedback.j2`` from a candidate's checkpoint records."""
    if not checkpoints:
        raise ValueError("reflection needs at least one checkpoint record")
    names = sorted({n for c in checkpoints for n in c["components"]})
    components = []
    scale = {}
    for name in names:
        means = [c["components"].get(name, {}).get("mean") for c in checkpoints]
        components.append({"name": name, **_series(means, samples)})
        known = [abs(m) for m in means if m is not None]
        scale[name] = float(np.mean(known)) if known else 0.0
    fitness = [c.get("fitness") for c in checkpoints]
    success = [c.get("success_rate") for c in checkpoints]
    known_fitness = [abs(f) for f in fitness if f is not None]
    flat, dominant = [], []
    for comp in components:
        known = [v for v in comp["raw"] if v is not None]
        if len(known) >= 2:
            spread = max(known) - min(known)
            if spread <= 0.02 * max(abs(v) for v in known) or spread < 1e-8:
                flat.append(comp)
    if len(scale) > 1:
        for name, s in scale.items():
            others = float(np.median([v for k, v in scale.items() if k != name]))
            if s > 0 and s > 10 * max(others, 1e-12):
                dominant.append({"name": name, "scale": _fmt(s), "others": _fmt(others)})
    return {
        "steps": checkpoints[-1]["step"],
        "checkpoints": len(checkpoints),
        "components": components,
        "fitness": _series(fitness, samples),
        "success_rate": _series(success, samples) if any(s is not None for s in success) else None,
        "episode_length": _series([c.get("episode_length") for c in checkpoints], samples),
        "zero_score": bool(known_fitness) and max(known_fitness) < 1e-6,
        "flat": flat,
        "dominant": dominant,
    }


def component_means(checkpoints: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each component's mean at each checkpoint (for LLM-free backends)."""
    names = sorted({n for c in checkpoints for n in c["components"]})
    return {
        n: [c["components"][n]["mean"] for c in checkpoints if n in c["components"]] for n in names
    }


class Feedback(Protocol):
    """Builds the messages that follow the opening of the next sampling prompt."""

    def messages(
        self, prompts: PromptBook, ranked: Sequence[Trained], responses: dict[str, str]
    ) -> list[Message]:
        """``ranked``: the candidates to learn from, best first (the run's best first);
        ``responses``: the model's answer of each, by id."""
        ...


class Reflection:
    """Eureka's reward reflection on the best candidate."""

    def messages(
        self, prompts: PromptBook, ranked: Sequence[Trained], responses: dict[str, str]
    ) -> list[Message]:
        best = ranked[0]
        stats = reflection([c.model_dump() for c in best.checkpoints])
        return [
            Message("assistant", responses[best.id]),
            Message("user", prompts.render("feedback", **stats)),
        ]


FEEDBACK: Registry[type[Feedback]] = Registry(
    "feedback mode", {"reflection": "eureka_lab.feedback:Reflection"}
)


def make_feedback(name: str) -> Feedback:
    return FEEDBACK.get(name)()
