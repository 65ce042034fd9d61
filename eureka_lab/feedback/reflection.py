"""Eureka's reward reflection, extended: the best candidate's answer, then each component's
statistics at the checkpoints, the task score and episode length, what its policy actually
did (the evaluator's behaviour summary), signs of reward hacking, and a table of what was
tried in recent iterations so failed ideas are not repeated. Numbers and observations are
computed here; every word is in ``prompts/feedback.j2``."""

from __future__ import annotations

from typing import Any

import numpy as np

from eureka_lab.feedback.base import (
    Feedback,
    Material,
    behaviour_view,
    chosen,
    fmt,
    sample,
    score_view,
    series,
    tried_rows,
)
from eureka_lab.prompt.conversation import Message
from eureka_lab.prompt.templates import PromptBook


def reflection(checkpoints: list[dict[str, Any]], samples: int = 10) -> dict[str, Any]:
    """Template values for ``feedback.j2`` from a candidate's checkpoint records."""
    if not checkpoints:
        raise ValueError("reflection needs at least one checkpoint record")
    names = sorted({n for c in checkpoints for n in c["components"]})
    at = [int(c["step"]) for c in checkpoints]
    idx = sample(at, samples)
    shown = [at[i] for i in idx]
    gaps = {b - a for a, b in zip(shown, shown[1:], strict=False)}
    components = []
    scale = {}
    for name in names:
        means = [c["components"].get(name, {}).get("mean") for c in checkpoints]
        components.append({"name": name, **series(means, idx)})
        known = [abs(m) for m in means if m is not None]
        scale[name] = float(np.mean(known)) if known else 0.0
    fitness = [c.get("fitness") for c in checkpoints]
    success = [c.get("success_rate") for c in checkpoints]
    known_fitness = [abs(f) for f in fitness if f is not None]
    flat: list[dict[str, Any]] = []
    bonus: list[dict[str, Any]] = []
    dominant: list[dict[str, str]] = []
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
                dominant.append({"name": name, "scale": fmt(s), "others": fmt(others)})
    return {
        "steps": checkpoints[-1]["step"],
        "checkpoints": len(checkpoints),
        "shown": len(shown),
        "shown_steps": "[" + ", ".join(str(s) for s in shown) + "]",
        "every": gaps.pop() if len(gaps) == 1 else None,
        "components": components,
        "fitness": series(fitness, idx),
        "success_rate": series(success, idx) if any(s is not None for s in success) else None,
        "episode_length": series(
            [c.get("eval_length", c.get("episode_length")) for c in checkpoints], idx
        ),
        "zero_score": bool(known_fitness) and max(known_fitness) < 1e-6,
        "flat": flat,
        "bonus": bonus,
        "dominant": dominant,
        "hacking": reward_hacking(checkpoints),
    }


def per_step(checkpoint: dict[str, Any]) -> float | None:
    """The reward per step on a checkpoint's training episodes: their mean return under
    the reward divided by their mean length (None where either is unknown). A return grows
    with longer episodes; per step it does not, so this compares like with like."""
    ret, length = checkpoint.get("reward_return"), checkpoint.get("episode_length")
    if ret is None or not length:
        return None
    return float(ret) / float(length)


def reward_hacking(checkpoints: list[dict[str, Any]], samples: int = 10) -> list[dict[str, Any]]:
    """Signs that the policy optimises the reward rather than the task: the reward per step
    of the training episodes (:func:`per_step`, not the return, which grows with the
    episodes' length) keeps rising over the second half of training while the task score
    stalls or falls, shown with the series it rests on; or one component makes most of the
    reward while the score is flat."""
    out: list[dict[str, Any]] = []
    half = checkpoints[len(checkpoints) // 2 :]
    rates = [r for r in (per_step(c) for c in half) if r is not None]
    scores = [float(f) for c in half if (f := c.get("fitness")) is not None]
    if len(half) >= 2 and len(rates) == len(scores) == len(half):
        r0, r1, f0, f1 = rates[0], rates[-1], scores[0], scores[-1]
        rose = r1 - r0 > 0.25 * max(abs(r0), abs(r1), 1e-9)
        if rose and f1 <= f0:
            idx = sample([int(c["step"]) for c in half], samples)

            def row(values: list[Any]) -> str:
                return "[" + ", ".join(fmt(values[i]) for i in idx) + "]"

            out.append(
                {
                    "kind": "rising_reward",
                    "reward_from": fmt(r0),
                    "reward_to": fmt(r1),
                    "score_from": fmt(f0),
                    "score_to": fmt(f1),
                    "from_step": half[0]["step"],
                    "to_step": half[-1]["step"],
                    "steps": row([c["step"] for c in half]),
                    "per_step": row(rates),
                    "returns": row([c.get("reward_return") for c in half]),
                    "train_length": row([c.get("episode_length") for c in half]),
                    "scores": row(scores),
                    "eval_length": row([c.get("eval_length") for c in half]),
                }
            )
    last = checkpoints[-1]["components"]
    total = sum(abs(s["mean"]) for s in last.values())
    all_scores = [f for c in checkpoints if (f := c.get("fitness")) is not None]
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
                    "score": fmt(all_scores[-1]),
                }
            )
    return out


def _all_known(values: list[float | None]) -> list[float] | None:
    """``values`` if none of them is missing, else None."""
    known = [v for v in values if v is not None]
    return known if len(known) == len(values) else None


class Reflection(Feedback):
    """Eureka's reward reflection on the best candidate, with its score as what it is,
    what its policy did, and what was tried: each attempt's score with its noise and, for
    the last iteration's, what its policy did, so the model can see why each lost."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        best = material.ranked[0]
        stats = reflection([c.model_dump() for c in best.checkpoints])
        at = chosen(best.checkpoints, best.result.best_step)
        tried = material.tried
        last = max((t.iteration for t in tried), default=None)
        new = [t for t in tried if t.iteration == last]
        return [
            Message("assistant", material.responses[best.id]),
            Message(
                "user",
                prompts.render(
                    "feedback",
                    **stats,
                    best={
                        "id": best.id,
                        "iteration": best.candidate.iteration,
                        "score": score_view(best.estimate),
                    },
                    noise=None if material.noise is None else fmt(material.noise),
                    improved=last is None or best.candidate.iteration >= last,
                    last_iteration=last,
                    last_attempts=len(new),
                    behaviour=behaviour_view(at["checkpoint"].behaviour) if at else None,
                    behaviour_step=at["step"] if at else None,
                    tie=at["tie"] if at else None,
                    tried=tried_rows(tried, best, material.noise),
                ),
            ),
        ]
