"""Prompt templates: strict rendering, the contract in the system prompt, user overrides."""

from __future__ import annotations

import jinja2
import pytest

from eureka_lab.prompt.templates import TEMPLATES, PromptBook
from eureka_lab.reward import contract

VALUES = {
    "system": {"n_envs": 8},
    "context": {
        "env_id": "ENVID",
        "constructed_with": "KWARGS",
        "source": "SOURCE",
        "observation": "OBSERVATION",
        "action": "ACTION",
        "info_keys": "KEYS",
    },
    "task": {
        "env_id": "CartPole-v1",
        "context": "CONTEXT",
        "description": "DESCRIPTION",
        "facts": {
            "dt": 0.05,
            "time_limit": 500,
            "timesteps": "1,000",
            "n_envs": 8,
            "algorithm": "ALGORITHM",
            "settings": {"discount": 0.99},
            "eval_episodes": 5,
            "checkpoints": 10,
            "has_fitness": True,
            "fitness_description": "SCORE",
            "success_threshold": 1.0,
        },
    },
    "feedback": {
        "steps": 1000,
        "checkpoints": 2,
        "shown": 2,
        "shown_steps": "[500, 1000]",
        "every": 500,
        "components": [{"name": "alive", "trace": "[1, 1]", "max": 1, "mean": 1, "min": 1}],
        "fitness": {"trace": "[0, 2]", "max": 2, "mean": 1, "min": 0},
        "success_rate": None,
        "episode_length": {"trace": "[5, 9]", "max": 9, "mean": 7, "min": 5},
        "zero_score": True,
        "flat": [{"name": "ALIVE", "min": 1, "max": 1}],
        "dominant": [{"name": "BIG", "scale": "50", "others": "1"}],
        "bonus": [{"name": "ALIVE", "max": 1}],
        "hacking": [{"kind": "dominant", "name": "BIG", "share": "90%", "score": "0"}],
        "behaviour": {
            "episodes": 2,
            "length": "9",
            "terminated": 1,
            "truncated": 1,
            "ends": "1 of 2 ended by the environment, 1 reached the time limit",
            "signals": [{"name": "X", "start": 0, "end": 1, "min": 0, "max": 1, "mean": 0.5}],
            "action_magnitude": "0.5",
            "action_at_limits": "3%",
            "events": [{"kind": "fall", "episodes": 1, "step": "7", "value": "n/a"}],
        },
        "behaviour_step": 100,
        "tie": {"others": 1, "every": False, "score": "2", "by": "return", "last": False},
        "best": {
            "id": "BESTID",
            "iteration": 0,
            "score": {"mean": "2", "std": None, "seeds": 1, "episodes": 5},
        },
        "noise": "0.5",
        "improved": False,
        "last_iteration": 1,
        "last_attempts": 1,
        "tried": [
            {
                "id": "iter_00/cand_00",
                "idea": "IDEA",
                "components": "alive",
                "status": "trained",
                "score": {"mean": "2", "std": None, "seeds": 1, "episodes": 5},
                "best": True,
                "gap": None,
                "within": None,
                "behaviour": None,
                "step": None,
                "tie": None,
                "reason": "",
            },
            {
                "id": "iter_01/cand_00",
                "idea": "IDEA",
                "components": "alive",
                "status": "trained",
                "score": {"mean": "1", "std": "0.3", "seeds": 2, "episodes": 5},
                "best": False,
                "gap": "-1",
                "within": False,
                "behaviour": {
                    "episodes": 2,
                    "length": "9",
                    "truncated": 1,
                    "events": [{"kind": "fall", "episodes": 1, "step": "7", "value": "n/a"}],
                    "moved": [{"name": "MOVED", "start": "0", "end": "1"}],
                },
                "step": 100,
                "tie": {"others": 3, "every": True, "score": "1", "by": "step", "last": True},
                "reason": "",
            },
        ],
    },
    "preference": {
        "best": {
            "id": "BEST",
            "stats": {
                "steps": 10,
                "checkpoints": 2,
                "shown": 2,
                "shown_steps": "[5, 10]",
                "components": [{"name": "a", "trace": "[1]", "max": 1, "mean": 1, "min": 1}],
                "episode_length": {"trace": "[5]"},
            },
            "code": "",
            "comment": "NICE",
        },
        "worst": {
            "id": "WORST",
            "stats": {
                "steps": 10,
                "checkpoints": 2,
                "shown": 2,
                "shown_steps": "[5, 10]",
                "components": [{"name": "b", "trace": "[1]", "max": 1, "mean": 1, "min": 1}],
                "episode_length": {"trace": "[5]"},
            },
            "code": "WORSTCODE",
            "comment": None,
        },
        "overall": "OVERALL",
        "history": [
            {
                "iteration": 0,
                "best": "B0",
                "worst": "W0",
                "best_components": "a",
                "worst_components": "b",
            }
        ],
    },
    "repair": {"stage": "validation", "traceback": "TRACEBACK"},
}


def test_every_template_has_values():
    assert set(VALUES) == set(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders(name):
    text = PromptBook().render(name, **VALUES[name])
    assert text.strip() and text.endswith("\n") and not text.endswith("\n\n")
    for value in VALUES[name].values():
        if isinstance(value, str) and value.isupper():
            assert value in text


# success_rate may be None (no threshold), every other variable is required.
REQUIRED = [(n, k) for n, vals in VALUES.items() for k, v in vals.items() if v is not None]


@pytest.mark.parametrize("name, missing", REQUIRED)
def test_missing_variable_raises(name, missing):
    values = {k: v for k, v in VALUES[name].items() if k != missing}
    with pytest.raises(jinja2.UndefinedError, match=missing):
        PromptBook().render(name, **values)


def test_system_prompt_has_contract_signature():
    text = PromptBook().render("system", n_envs=8)
    signature = next(
        line.strip() for line in contract.__doc__.splitlines() if "def compute_reward" in line
    )
    assert signature + ":" in text
    assert f"def {contract.FUNCTION_NAME}({', '.join(contract.ARGUMENTS)})" in text
    assert "8 parallel environments" in text
    for module in contract.ALLOWED_IMPORTS:
        assert f"`{module}`" in text


def test_opening_messages():
    system, user = PromptBook().opening(
        env_id="Hopper-v5", context="SOURCE", description="hop forward", n_envs=4
    )
    assert (system.role, user.role) == ("system", "user")
    assert "4 parallel environments" in system.content
    assert "`Hopper-v5`" in user.content and "SOURCE" in user.content
    assert "The task: hop forward" in user.content


def test_user_folder_overrides_one_template(tmp_path):
    (tmp_path / "task.j2").write_text("Custom task for {{ env_id }}: {{ description }}")
    book = PromptBook(tmp_path)
    assert book.render("task", **VALUES["task"]) == "Custom task for CartPole-v1: DESCRIPTION\n"
    assert book.render("system", n_envs=8) == PromptBook().render("system", n_envs=8)


def test_override_is_strict_too(tmp_path):
    (tmp_path / "repair.j2").write_text("{{ stage }} {{ unknown_variable }}")
    with pytest.raises(jinja2.UndefinedError, match="unknown_variable"):
        PromptBook(tmp_path).render("repair", **VALUES["repair"])


def test_unknown_template():
    with pytest.raises(jinja2.TemplateNotFound):
        PromptBook().render("nope")
