"""ReplayBackend reads a run's recorded requests; ManualBackend waits for answer files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from eureka_lab.backends import BackendSettings, make_backend
from eureka_lab.backends.base import Completion, Message, Prompt, Usage
from eureka_lab.backends.manual import ManualBackend
from eureka_lab.backends.replay import ReplayBackend
from eureka_lab.core.errors import BackendError
from eureka_lab.runs.store import RunStore

SYSTEM = Message("system", "You write reward functions.")
USER = Message("user", "Task: walk forward.\nObservation: qpos, qvel\nWrite the reward.")


def prompt(user: Message = USER, key: str = "iter_00/sample", iteration: int = 0) -> Prompt:
    return Prompt((SYSTEM, user), purpose="sample", iteration=iteration, key=key)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    store = RunStore.create(tmp_path, "t", {})
    completions = [
        Completion("def reward(): return 1", Usage(10, 5, 0.01), model="gpt-4o"),
        Completion("def reward(): return 2", Usage(10, 5, 0.01), model="gpt-4o"),
    ]
    store.save_request(prompt(), 2, completions, "openai")
    store.save_request(
        prompt(Message("user", "Feedback: try harder"), key="iter_01/sample", iteration=1),
        1,
        [Completion("def reward(): return 3", model="gpt-4o")],
        "openai",
    )
    return store.root


# ---------------------------------------------------------------------------- replay
def test_replay_returns_the_recorded_completions(run_dir: Path) -> None:
    backend = make_backend(f"replay:{run_dir}", BackendSettings())
    assert backend.name == "replay"
    out = backend.complete(prompt(), 2)
    assert [c.text for c in out] == ["def reward(): return 1", "def reward(): return 2"]
    assert out[0].usage.prompt_tokens == 10 and out[0].usage.cost_usd == 0.0
    assert out[0].meta["replayed_from"] == str(run_dir)
    assert backend.complete(prompt(), 1)[0].text == "def reward(): return 1"


def test_replay_with_fewer_recorded_fills_failed(run_dir: Path) -> None:
    out = ReplayBackend(BackendSettings(), run_dir).complete(prompt(), 3)
    assert [c.ok for c in out] == [True, True, False]
    assert "recorded only 2" in (out[2].error or "")


def test_replay_names_the_first_differing_message(run_dir: Path) -> None:
    changed = Message("user", USER.content.replace("qpos, qvel", "qpos, qvel, cfrc_ext"))
    with pytest.raises(BackendError) as info:
        ReplayBackend(BackendSettings(), run_dir).complete(prompt(changed), 2)
    msg = str(info.value)
    assert "message 1 (user)" in msg and "line 2" in msg
    assert "'Observation: qpos, qvel'" in msg and "cfrc_ext" in msg


def test_replay_unknown_key_and_wrong_iteration(run_dir: Path) -> None:
    backend = ReplayBackend(BackendSettings(), run_dir)
    with pytest.raises(BackendError, match=r"no recorded request with key 'iter_05/sample'"):
        backend.complete(prompt(key="iter_05/sample", iteration=5), 1)
    with pytest.raises(BackendError, match="iteration 3"):
        backend.complete(prompt(key="iter_00/sample", iteration=3), 1)
    with pytest.raises(BackendError, match="message 2"):
        backend.complete(Prompt((SYSTEM, USER, USER), key="iter_00/sample"), 1)


def test_replay_of_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not a run directory"):
        make_backend(f"replay:{tmp_path}", BackendSettings())
    with pytest.raises(BackendError, match="replay:RUN_DIR"):
        ReplayBackend(BackendSettings())


# ---------------------------------------------------------------------------- manual
def _start(backend: ManualBackend, p: Prompt, n: int) -> tuple[threading.Thread, list]:
    result: list = []

    def run() -> None:
        try:
            result.append(backend.complete(p, n))
        except BaseException as e:  # pragma: no cover - surfaced by the assertion
            result.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_manual_waits_for_answer_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    backend = ManualBackend(BackendSettings(run_dir=tmp_path))
    backend.poll_interval = 0.02
    thread, result = _start(backend, prompt(), 2)
    folder = tmp_path / "manual" / "iter_00" / "sample"
    deadline = time.monotonic() + 5
    while not (folder / "prompt.md").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    text = (folder / "prompt.md").read_text()
    assert SYSTEM.content in text and "Observation: qpos, qvel" in text and "answer_2.md" in text

    (folder / "answer_1.md").write_text("first answer")
    (folder / "answer_2.md").write_text("")  # being written: empty is not an answer
    time.sleep(0.15)
    assert thread.is_alive()
    (folder / "answer_2.md").write_text("second answer")
    thread.join(5)
    assert not thread.is_alive()
    (out,) = result
    assert [c.text for c in out] == ["first answer", "second answer"]
    assert all(c.ok and c.model == "manual" for c in out)
    err = capsys.readouterr().err
    assert str(folder / "prompt.md") in err and "answer_1.md, answer_2.md" in err


def test_manual_accepts_pasted_answers(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd) as stdin:
        backend = ManualBackend(BackendSettings(run_dir=tmp_path), stdin=stdin)
        backend.poll_interval = 0.02
        thread, result = _start(backend, prompt(key="iter_02/repair", iteration=2), 2)
        os.write(write_fd, b"def reward():\n    return 1\nEOF\n")
        os.write(write_fd, b"second\nEOF\n")
        thread.join(5)
        os.close(write_fd)
    (out,) = result
    assert out[0].text == "def reward():\n    return 1\n" and out[1].text == "second\n"
    assert (tmp_path / "manual" / "iter_02" / "repair" / "answer_1.md").is_file()


def test_manual_without_a_run_dir() -> None:
    with pytest.raises(BackendError, match="run directory"):
        ManualBackend(BackendSettings()).complete(prompt(), 1)
