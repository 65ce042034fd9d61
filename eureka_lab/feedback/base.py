"""The feedback seam: what the next sampling prompt is built from, chosen by name.

``reflection`` (Eureka, extended): the best candidate's answer, then its reward reflection
(each component's statistics at the checkpoints, the task score and episode length), what
its policy actually did (the evaluator's behaviour summary), signs of reward hacking, and a
table of what was tried in recent iterations so failed ideas are not repeated. Numbers and
observations are computed here; every word is in ``prompts/feedback.j2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from eureka_lab.core.registry import Registry
from eureka_lab.core.text import safe_text
from eureka_lab.prompt.conversation import Message
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.records import Behaviour, Ranking
from eureka_lab.selectors.base import Trained

MAX_TRIED = 16
"""Rows of the table of recent attempts."""


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _series(values: list[float | None], samples: int) -> dict[str, Any]:
    known = [v for v in values if v is not None]
    idx = np.unique(np.linspace(0, len(values) - 1, min(samples, len(values))).round().astype(int))
    return {
        "trace": "[" + ", ".join(_fmt(values[i]) for i in idx) + "]",
        "shown": len(idx),
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
    flat, bonus, dominant = [], [], []
    for comp in components:
        known = [v for v in comp["raw"] if v is not None]
        if len(known) >= 2:
            spread = max(known) - min(known)
            if spread <= 0.02 * max(abs(v) for v in known) or spread < 1e-8:
                stats = [c["components"].get(comp["name"]) for c in checkpoints]
                constant = all(
                    s is not None and s["min"] == s["max"] and s["min"] > 0 for s in stats
                )
                # A constant positive per-step term is an alive bonus: it works by existing.
                (bonus if constant else flat).append(comp)
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
        "episode_length": _series(
            [c.get("eval_length", c.get("episode_length")) for c in checkpoints], samples
        ),
        "zero_score": bool(known_fitness) and max(known_fitness) < 1e-6,
        "flat": flat,
        "bonus": bonus,
        "dominant": dominant,
        "hacking": reward_hacking(checkpoints),
    }


def reward_hacking(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signs that the policy optimises the reward rather than the task: the reward's
    episode return keeps rising over the second half of training while the task score
    stalls or falls; or one component makes most of the reward while the score is flat."""
    out: list[dict[str, Any]] = []
    half = checkpoints[len(checkpoints) // 2 :]
    returns = [c.get("reward_return") for c in half]
    scores = [c.get("fitness") for c in half]
    if len(half) >= 2 and None not in returns and None not in scores:
        r0, r1, f0, f1 = returns[0], returns[-1], scores[0], scores[-1]
        rose = r1 - r0 > 0.25 * max(abs(r0), abs(r1), 1e-9)
        if rose and f1 <= f0:
            out.append(
                {
                    "kind": "rising_reward",
                    "reward_from": _fmt(r0),
                    "reward_to": _fmt(r1),
                    "score_from": _fmt(f0),
                    "score_to": _fmt(f1),
                    "from_step": half[0]["step"],
                    "to_step": half[-1]["step"],
                }
            )
    last = checkpoints[-1]["components"]
    total = sum(abs(s["mean"]) for s in last.values())
    all_scores = [c.get("fitness") for c in checkpoints if c.get("fitness") is not None]
    if len(last) > 1 and total > 0 and len(all_scores) >= 2:
        name, stats = max(last.items(), key=lambda kv: abs(kv[1]["mean"]))
        share = abs(stats["mean"]) / total
        spread = max(all_scores) - min(all_scores)
        if share > 0.8 and spread <= 0.05 * max(abs(s) for s in all_scores):
            out.append(
                {
                    "kind": "dominant",
                    "name": name,
                    "share": f"{100 * share:.0f}%",
                    "score": _fmt(all_scores[-1]),
                }
            )
    return out


def behaviour_view(behaviour: Behaviour | None) -> dict[str, Any] | None:
    """The behaviour summary with numbers formatted for the template."""
    if behaviour is None:
        return None
    b = behaviour
    return {
        "episodes": b.episodes,
        "length": _fmt(b.length),
        "terminated": b.terminated,
        "truncated": b.truncated,
        "signals": [
            {
                "name": s.name,
                **{k: _fmt(getattr(s, k)) for k in ("start", "end", "min", "max", "mean")},
            }
            for s in b.signals
        ],
        "action_magnitude": None if b.action_magnitude is None else _fmt(b.action_magnitude),
        "action_at_limits": None
        if b.action_at_limits is None
        else f"{100 * b.action_at_limits:.0f}%",
        "events": [
            {"kind": e.kind, "episodes": e.episodes, "step": _fmt(e.step), "value": _fmt(e.value)}
            for e in b.events
        ],
    }


@dataclass(frozen=True)
class Tried:
    """One recent candidate, as the table of attempts shows it."""

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


class Feedback(Protocol):
    """Builds the messages that follow the opening of the next sampling prompt."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]: ...


def tried_rows(tried: Sequence[Tried], best: Trained) -> list[dict[str, Any]]:
    """The table of attempts, best score first, failures last, bounded."""
    ref = best.result.fitness
    rows = []
    for t in tried:
        versus = None
        if t.fitness is not None and ref is not None:
            versus = "the best" if t.id == best.id else _fmt(t.fitness - ref)
        rows.append(
            {
                "id": t.id,
                "idea": t.idea or "-",
                "components": ", ".join(t.components) or "-",
                "status": t.status,
                "score": _fmt(t.fitness),
                "versus": versus,
                "reason": safe_text(t.reason or "", 120),
            }
        )
    rows.sort(key=lambda r: (r["score"] == "n/a", -float(r["score"]) if r["score"] != "n/a" else 0))
    return rows[:MAX_TRIED]


class Reflection:
    """Eureka's reward reflection on the best candidate, with what its policy did and what
    was tried."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        best = material.ranked[0]
        stats = reflection([c.model_dump() for c in best.checkpoints])
        at_best = next(
            (c for c in best.checkpoints if c.step == best.result.best_step), best.checkpoints[-1]
        )
        return [
            Message("assistant", material.responses[best.id]),
            Message(
                "user",
                prompts.render(
                    "feedback",
                    **stats,
                    behaviour=behaviour_view(at_best.behaviour),
                    behaviour_step=at_best.step,
                    tried=tried_rows(material.tried, best),
                ),
            ),
        ]


class Preference:
    """ICPL: the most and the least preferred candidates' code with their reward traces,
    the person's comments (Eureka-HF's critique), and a compact history of earlier choices.
    The task score is never shown: a person's preference replaces it."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        best, worst = material.ranked[0], material.ranked[-1]
        last = material.rankings[-1] if material.rankings else None
        comments = last.comments if last else {}

        def view(t: Trained, with_code: bool) -> dict[str, Any]:
            stats = reflection([c.model_dump() for c in t.checkpoints])
            return {
                "id": t.id,
                "stats": stats,
                "code": safe_text(material.codes.get(t.id, ""), 6000) if with_code else "",
                "comment": comments.get(t.id),
            }

        by_id = {t.id: t for t in material.ranked}
        history = []
        for r in material.rankings[-MAX_HISTORY:]:
            top, bottom = r.order[0][0], r.order[-1][0]
            if top == bottom:
                continue
            history.append(
                {
                    "iteration": r.iteration,
                    "best": top,
                    "worst": bottom,
                    "best_components": ", ".join(by_id[top].candidate.components)
                    if top in by_id
                    else "-",
                    "worst_components": ", ".join(by_id[bottom].candidate.components)
                    if bottom in by_id
                    else "-",
                }
            )
        return [
            Message("assistant", material.responses[best.id]),
            Message(
                "user",
                prompts.render(
                    "preference",
                    best=view(best, False),
                    worst=view(worst, True) if worst.id != best.id else None,
                    overall=last.overall if last else None,
                    history=history,
                ),
            ),
        ]


MAX_HISTORY = 8
"""Earlier choices listed in a preference prompt."""


FEEDBACK: Registry[type[Feedback]] = Registry(
    "feedback mode",
    {
        "reflection": "eureka_lab.feedback.base:Reflection",
        "preference": "eureka_lab.feedback.base:Preference",
    },
)


def make_feedback(name: str) -> Feedback:
    return FEEDBACK.get(name)()


def component_means(checkpoints: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each component's mean at each checkpoint (for LLM-free backends)."""
    names = sorted({n for c in checkpoints for n in c["components"]})
    return {
        n: [c["components"][n]["mean"] for c in checkpoints if n in c["components"]] for n in names
    }
