"""Reward reflection: evenly sampled series, the notes that drive the advice, and the
feedback message rendered from them."""

from __future__ import annotations

import pytest

from eureka_lab.feedback.base import component_means
from eureka_lab.feedback.reflection import reflection
from eureka_lab.prompt.templates import PromptBook


def _checkpoints(n, comps, fitness=None, success=None, length=None):
    """n checkpoint records; comps maps a name to a function of the checkpoint index."""
    out = []
    for i in range(n):
        out.append(
            {
                "step": 100 * (i + 1),
                "components": {
                    name: {"mean": f(i), "min": f(i) - 1, "max": f(i) + 1}
                    for name, f in comps.items()
                },
                "fitness": fitness(i) if fitness else float(i),
                "success_rate": success(i) if success else None,
                "episode_length": length(i) if length else 10.0 + i,
            }
        )
    return out


def _values(series):
    return series["trace"].strip("[]").split(", ")


@pytest.mark.parametrize("n, shown", [(1, 1), (5, 5), (10, 10), (25, 10), (100, 10)])
def test_series_samples_about_ten_values_evenly(n, shown):
    ref = reflection(_checkpoints(n, {"a": float}))
    values = _values(ref["fitness"])
    assert len(values) == shown
    assert values[0] == "0" and values[-1] == f"{n - 1:.3g}"  # first and last always shown
    ints = [int(float(v)) for v in values]
    gaps = [b - a for a, b in zip(ints, ints[1:], strict=False)]
    assert not gaps or max(gaps) - min(gaps) <= 1  # evenly spaced
    assert ref["steps"] == 100 * n and ref["checkpoints"] == n


def test_series_max_mean_min():
    ref = reflection(_checkpoints(4, {"a": lambda i: [1.0, 5.0, 3.0, -1.0][i]}))
    (comp,) = ref["components"]
    assert comp["name"] == "a"
    assert (comp["max"], comp["mean"], comp["min"]) == ("5", "2", "-1")
    assert comp["trace"] == "[1, 5, 3, -1]"


def render(ref: dict, **extra) -> str:
    values = {
        "behaviour": None,
        "behaviour_step": 0,
        "tie": None,
        "best": {"id": "iter_00/cand_00", "iteration": 0, "score": None},
        "noise": None,
        "improved": True,
        "last_iteration": 0,
        "last_attempts": 1,
        "tried": [],
        **extra,
    }
    return PromptBook().render("feedback", **ref, **values)


def notes(ref: dict) -> list[str]:
    """The "What stands out" lines of the rendered feedback (the wording is the template's)."""
    text = render(ref)
    if "What stands out:" not in text:
        return []
    block = text.split("What stands out:")[1].split("\n\n")[0]
    return [line[2:] for line in block.strip().splitlines() if line.startswith("- ")]


def test_constant_component_is_flagged():
    ref = reflection(_checkpoints(5, {"alive": lambda i: 1.0, "speed": lambda i: 0.1 * i}))
    flagged = [n for n in notes(ref) if "barely changed" in n]
    assert len(flagged) == 1 and "`alive`" in flagged[0]


def test_dominant_component_is_flagged():
    comps = {"big": lambda i: 50.0 + i, "small": lambda i: 1.0 + 0.5 * i, "tiny": lambda i: -i}
    ref = reflection(_checkpoints(5, comps))
    flagged = [n for n in notes(ref) if "over 10 times larger" in n]
    assert len(flagged) == 1 and "`big`" in flagged[0]


def test_balanced_components_have_no_scale_note():
    ref = reflection(_checkpoints(5, {"a": lambda i: 1.0 + i, "b": lambda i: 2.0 - i}))
    assert not [n for n in notes(ref) if "over 10 times" in n or "barely changed" in n]


@pytest.mark.parametrize("fitness, flagged", [(lambda i: 0.0, True), (lambda i: 0.5, False)])
def test_zero_fitness_is_flagged(fitness, flagged):
    ref = reflection(_checkpoints(3, {"a": lambda i: float(i)}, fitness=fitness))
    assert any("task score stayed at zero" in n for n in notes(ref)) is flagged


def test_missing_values_and_success_rate():
    cps = _checkpoints(3, {"a": float}, success=lambda i: i / 2, length=lambda i: None)
    del cps[1]["components"]["a"]  # a component absent at one checkpoint
    ref = reflection(cps)
    assert ref["components"][0]["trace"] == "[0, n/a, 2]"
    assert ref["success_rate"]["max"] == "1"
    assert ref["episode_length"]["max"] == "n/a"
    assert reflection(_checkpoints(2, {"a": float}))["success_rate"] is None


def test_feedback_template_lists_each_component():
    comps = {"velocity": lambda i: 0.5 * i, "alive": lambda i: 1.0}
    cps = _checkpoints(12, comps, fitness=lambda i: 0.0, success=lambda i: 0.0)
    ref = reflection(cps)
    text = render(ref)
    for comp in ref["components"]:
        line = (
            f"{comp['name']}: {comp['trace']}, Max: {comp['max']}, Mean: {comp['mean']}, "
            f"Min: {comp['min']}"
        )
        assert line in text
    assert f"task score: {ref['fitness']['trace']}, Max: 0" in text
    assert f"success rate: {ref['success_rate']['trace']}, Max: 0" in text
    assert "built-in method" not in text  # Jinja's c.values is dict.values, not the series
    assert "for 1200 steps" in text and "12 checkpoints; 10 of them are shown" in text
    assert "evenly spaced" not in text
    assert notes(ref)  # the zero score and the constant `alive`
    assert "What stands out:" in text


def test_feedback_template_without_notes_or_success():
    ref = reflection(_checkpoints(3, {"a": lambda i: float(i), "b": lambda i: 1.0 - i}))
    assert notes(ref) == []
    assert not ref["flat"] and not ref["dominant"] and not ref["zero_score"]
    text = render(ref)
    assert "What stands out" not in text and "success rate" not in text


def test_component_means():
    cps = _checkpoints(3, {"a": float, "b": lambda i: 2.0})
    del cps[0]["components"]["b"]
    assert component_means(cps) == {"a": [0.0, 1.0, 2.0], "b": [2.0, 2.0]}
