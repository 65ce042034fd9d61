"""The trainer a task gets where it names none: warp where torch sees a CUDA device and the
env has a batched form, ppo for the other batched envs, sb3 for the rest; what a task or
``--trainer`` names is kept; the run records the choice and says it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from eureka_lab import api
from eureka_lab.task.load import load_task, task_from_dict
from eureka_lab.trainers import task_trainer
from eureka_lab.trainers.default import default_trainer, with_trainer

from support.tasks import tiny_task_dict

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tall_hopper" / "tall_hopper.yaml"


@pytest.fixture(params=[False, True], ids=["cpu", "cuda"])
def cuda(request, monkeypatch) -> bool:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: request.param)
    return request.param


def walker() -> object:
    return load_task("Walker2d-v5", description="walk backwards")


def test_a_batched_task_that_names_no_trainer_gets_warp_on_cuda_else_ppo(cuda) -> None:
    task = walker()
    assert task.trainer is None
    chosen = default_trainer(task)
    assert chosen.choice.name == ("warp" if cuda else "ppo")
    assert "Walker2d-v5 has a batched form" in chosen.reason
    assert ("sees a CUDA device" if cuda else "sees no CUDA device") in chosen.reason
    resolved, said = with_trainer(task)
    assert resolved.trainer == chosen.choice and said == chosen
    assert said.line.startswith(f"trainer: {chosen.choice.name} (the default: ")


def test_an_env_without_a_batched_form_keeps_sb3(cuda) -> None:
    task = load_task("CartPole-v1", description="balance")
    assert default_trainer(task).choice.name == "sb3"
    raw = {k: v for k, v in tiny_task_dict().items() if k != "trainer"}
    assert task_trainer(task_from_dict(raw)).Settings.__name__ == "SB3Settings"


def test_a_tasks_own_definition_counts_as_a_batched_form(cuda) -> None:
    task = load_task(str(EXAMPLE))
    assert task.trainer is None and task.batched is not None
    assert default_trainer(task).choice.name == ("warp" if cuda else "ppo")


def test_on_cuda_without_mujoco_warp_the_default_is_ppo_and_says_why(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    find = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "mujoco_warp" else find(name, *a),
    )
    chosen = default_trainer(walker())
    assert chosen.choice.name == "ppo" and "MuJoCo Warp is not installed" in chosen.reason


def test_a_named_trainer_is_kept_and_trainer_overrides(cuda) -> None:
    hopper = load_task("hopper")  # its file names ppo with settings
    assert with_trainer(hopper) == (hopper, None)
    sb3 = load_task("cartpole")
    assert with_trainer(sb3)[0].trainer.name == "sb3"
    task, chosen = with_trainer(walker(), "sb3")
    assert task.trainer.name == "sb3" and chosen is None
    task, chosen = with_trainer(walker(), {"name": "ppo", "n_envs": 8})
    assert task.trainer.settings == {"n_envs": 8} and chosen is None
    # Settings alone (--trainer-option without --trainer) go to the trainer it would get.
    task, chosen = with_trainer(walker(), {"n_envs": 8})
    assert (task.trainer.name, task.trainer.settings) == (chosen.choice.name, {"n_envs": 8})


def test_the_run_records_the_default_and_says_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(api, "_go", lambda store, reporter: store)
    events: list[dict] = []
    store = api.run(
        "Walker2d-v5",
        llm="openai",
        description="walk backwards",
        runs_dir=tmp_path,
        reporter=events.append,
    )
    config = json.loads((store.root / "config.json").read_text())
    assert config["task"]["trainer"] == {"name": "ppo", "settings": {}}
    (said,) = [e for e in events if e["event"] == "trainer_chosen"]
    assert said["trainer"] == "ppo" and said["line"].startswith("trainer: ppo (the default: ")
    assert [e["event"] for e in store.events()] == ["trainer_chosen"]
    events.clear()
    api.run("hopper", llm="openai", runs_dir=tmp_path, reporter=events.append)
    assert events == []  # the task names its trainer: nothing chosen, nothing said


def test_the_command_says_the_trainer_as_it_says_the_model_backend() -> None:
    from rich.console import Console

    from eureka_lab.cli import _RunReporter

    console = Console(record=True, width=200)
    passed: list[dict] = []
    line = "trainer: ppo (the default: Walker2d-v5 has a batched form; ...)"
    _RunReporter(passed.append, console)({"event": "trainer_chosen", "line": line})
    assert console.export_text().strip() == line and len(passed) == 1
