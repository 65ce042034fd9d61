"""Reward reflection: a trained candidate's checkpoint statistics, summarised for the model
(Eureka's feedback), with the observations that drive its advice computed here."""

from __future__ import annotations

from typing import Any

import numpy as np


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
    fitness = [c["fitness"] for c in checkpoints]
    success = [c.get("success_rate") for c in checkpoints]
    notes = []
    if max(abs(f) for f in fitness) < 1e-6:
        notes.append("The task score stayed at zero: rewrite the entire reward function.")
    for comp in components:
        known = [v for v in comp["raw"] if v is not None]
        if len(known) >= 2:
            spread = max(known) - min(known)
            if spread <= 0.02 * max(abs(v) for v in known) or spread < 1e-8:
                notes.append(
                    f"`{comp['name']}` barely changed during training ({comp['min']} to "
                    f"{comp['max']}): RL cannot optimise it as written."
                )
    if len(scale) > 1:
        for name, s in scale.items():
            others = [v for k, v in scale.items() if k != name]
            if s > 0 and s > 10 * max(float(np.median(others)), 1e-12):
                notes.append(
                    f"`{name}` (mean magnitude {s:.3g}) is over 10 times larger than the "
                    f"other components (median {float(np.median(others)):.3g}): rescale it."
                )
    return {
        "steps": checkpoints[-1]["step"],
        "checkpoints": len(checkpoints),
        "components": components,
        "fitness": _series(fitness, samples),
        "success_rate": _series(success, samples) if any(s is not None for s in success) else None,
        "episode_length": _series([c.get("episode_length") for c in checkpoints], samples),
        "notes": notes,
    }


def component_means(checkpoints: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each component's mean at each checkpoint (for LLM-free backends)."""
    names = sorted({n for c in checkpoints for n in c["components"]})
    return {
        n: [c["components"][n]["mean"] for c in checkpoints if n in c["components"]] for n in names
    }
