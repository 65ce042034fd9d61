"""End to end through the ``eureka-lab`` command against a real HTTP server speaking the
OpenAI protocol (tests/support/fake_openai.py) that answers with realistic reward functions
(tests/fixtures/llm_answers/): recording, replay, key hygiene, budget, faults and resume,
manual mode, and the settings file.

Training dominates the time (each candidate is a worker process importing torch), so the
full runs are few and shared: one live run (stopped by a failing server, then resumed), its
replay, and one manual run; everything else stops before any training.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eureka_lab.backends.openai_compat import OpenAIBackend
from eureka_lab.cli import main

from support.fake_openai import FakeOpenAI

KEY = "sk-test-DISTINCTIVE-9876"
ANSWERS = Path(__file__).parent / "fixtures" / "llm_answers"
LOOP_FLAGS = ["--iterations", "2", "--samples", "2", "--workers", "2", "--final-seeds", "1"]
DESCRIPTION = "Drive the under-powered car up the right hill to the flag at position 0.5."
TASK_YAML = """\
name: tiny_car
env_id: MountainCar-v0
max_episode_steps: 50
description: {description}
timesteps: 512
eval_episodes: 1
checkpoints: 2
trainer:
  name: sb3
  n_envs: 2
  n_steps: 64
  batch_size: 64
  n_epochs: 1
"""


def answer(name: str) -> str:
    return (ANSWERS / f"{name}.md").read_text()


class Answers:
    """What the fake model says: first iteration a <think> answer and a broken one, a fixed
    answer to the repair request, then two others once it has seen feedback."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[str, int] = {}

    def __call__(self, body: dict[str, Any], i: int) -> str:
        messages = body["messages"]
        if "could not be used" in messages[-1]["content"]:
            return answer("repaired")
        kind = "first" if len(messages) <= 2 else "feedback"
        with self.lock:
            k = self.count[kind] = self.count.get(kind, -1) + 1
        names = ("think_height", "broken_index") if kind == "first" else ("energy", "velocity")
        return answer(names[k % 2])


def write_task(folder: Path, description: str = DESCRIPTION) -> Path:
    path = folder / "tiny_car.yaml"
    path.write_text(TASK_YAML.format(description=description))
    return path


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if (p / "config.json").is_file())


def only_run(runs: Path) -> Path:
    (run,) = run_dirs(runs)
    return run


def cli(*args: str | Path) -> tuple[int, str, str]:
    """``eureka-lab ARGS`` in this process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


def error_line(err: str) -> str:
    """The one ``error:`` line of stderr (after any logged retries), checked to be the last
    thing printed but for the note saying where the run is."""
    lines = err.strip().splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(at) == 1, err
    assert all(line.startswith("(the ") for line in lines[at[0] + 1 :]), err
    assert "Traceback" not in err
    return lines[at[0]]


def files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def console_script() -> str:
    script = Path(sys.executable).parent / "eureka-lab"
    found = str(script) if script.exists() else shutil.which("eureka-lab")
    if not found:
        pytest.skip("the eureka-lab console script is not installed")
    return found


def candidates(run: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for d in sorted(run.glob("iter_*/cand_*")):
        rec = json.loads((d / "candidate.json").read_text())
        result = (
            json.loads((d / "result.json").read_text()) if (d / "result.json").is_file() else {}
        )
        code = (d / "reward.py").read_text() if (d / "reward.py").is_file() else None
        out[rec["id"]] = {"status": rec["status"], "result": result.get("status"), "code": code}
    return out


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(OpenAIBackend, "backoff_base", 0.001)


# ------------------------------------------------------------------ the shared live run
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A run against the fake server, with OPENAI_API_KEY set: the server answers the first
    two requests (iteration 0 and its repair), then fails every request, so the run stops at
    iteration 1; ``resume`` with the server healthy again finishes it. The server is stopped
    before the tests use the run (replay must not need it)."""
    root = tmp_path_factory.mktemp("live")
    task = write_task(root)
    runs = root / "runs"
    with pytest.MonkeyPatch.context() as mp, FakeOpenAI(Answers()) as server:
        mp.setenv("OPENAI_API_KEY", KEY)
        mp.delenv("OPENAI_BASE_URL", raising=False)
        mp.setattr(OpenAIBackend, "backoff_base", 0.001)
        server.fail("ok", "ok")
        server.always = "500"
        args = ["--llm", "openai", "--base-url", server.url, "--model", "gpt-4o-mini"]
        first = cli("run", task, *args, *LOOP_FLAGS, "--runs-dir", runs)
        run = only_run(runs)
        stopped = {
            "requests": len(server.chat_requests),
            "llm": sorted(p.name for p in (run / "llm").iterdir()),
            "show": cli("show", run),
        }
        server.always = None
        resumed = cli("resume", run)
        requests = list(server.chat_requests)
    yield SimpleNamespace(
        task=task,
        run=run,
        args=args,
        first=first,
        stopped=stopped,
        resumed=resumed,
        requests=requests,
        printed="".join([*first[1:], *stopped["show"][1:], *resumed[1:]]),
    )


def test_failing_server_stops_the_run_naming_resume(live: SimpleNamespace) -> None:
    rc, out, err = live.first
    assert rc == 2, out + err
    line = error_line(err)  # retries are logged as they happen, then the error
    assert line.startswith("error: The model returned no usable answer to iter_01-sample")
    assert "HTTP 500" in line and f"eureka-lab resume {live.run}" in line
    # Two good requests, then one request retried until the retries ran out (5 + 1).
    assert live.stopped["requests"] == 2 + 6
    names = live.stopped["llm"]
    assert "iter_00-sample.json" in names and "iter_00-repair-01-r1.json" in names
    assert "iter_01-sample.json" not in names
    assert any(n.startswith("iter_01-sample.failed-") for n in names)
    assert "iteration 0 done: 2 trained" in out
    show_rc, show_out, _ = live.stopped["show"]
    assert show_rc == 0 and "no summary yet" in show_out


def test_resume_finishes_without_asking_again(live: SimpleNamespace) -> None:
    rc, out, err = live.resumed
    assert rc == 0, out + err
    # Only the request that had failed was sent again.
    assert len(live.requests) == live.stopped["requests"] + 1
    assert len(live.requests[-1]["body"]["messages"]) == 4  # iteration 1: with feedback
    events = [json.loads(line) for line in (live.run / "events.jsonl").read_text().splitlines()]
    started = [
        e["id"]
        for e in events
        if e["event"] == "training_started"
        and e["id"].startswith("iter_")
        and "/seed_" not in e["id"]  # a race's further seeds
    ]
    assert sorted(started) == [
        "iter_00/cand_00",
        "iter_00/cand_01_r1",
        "iter_01/cand_00",
        "iter_01/cand_01",
    ]
    assert (live.run / "summary.json").is_file()


def test_run_records_every_request(live: SimpleNamespace) -> None:
    records = {
        p.stem: json.loads(p.read_text())
        for p in (live.run / "llm").glob("*.json")
        if ".failed-" not in p.name
    }
    assert sorted(records) == ["iter_00-repair-01-r1", "iter_00-sample", "iter_01-sample"]
    for rec in records.values():
        assert rec["backend"] == "openai"
        assert rec["messages"][0]["role"] == "system"
        assert "compute_reward" in rec["messages"][0]["content"]
        for c in rec["completions"]:
            assert c["text"] and c["error"] is None
            assert c["usage"]["prompt_tokens"] > 0 and c["usage"]["completion_tokens"] > 0
            assert c["usage"]["cost_usd"] > 0  # gpt-4o-mini is priced
    sample = records["iter_00-sample"]
    assert sample["n"] == 2 and len(sample["completions"]) == 2
    assert "<think>" in sample["completions"][0]["text"]
    repair = records["iter_00-repair-01-r1"]
    assert "IndexError" in repair["messages"][-1]["content"]
    assert repair["messages"][-2]["content"] == answer("broken_index")
    # What the server was sent is what was recorded.
    bodies = [r["body"] for r in live.requests]
    assert bodies[0]["messages"] == sample["messages"] and bodies[0]["n"] == 2
    assert bodies[0]["model"] == "gpt-4o-mini"
    assert live.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"

    cands = candidates(live.run)
    assert {k: (v["status"], v["result"]) for k, v in cands.items()} == {
        "iter_00/cand_00": ("valid", "trained"),
        "iter_00/cand_01": ("failed", None),
        "iter_00/cand_01_r1": ("valid", "trained"),
        "iter_01/cand_00": ("valid", "trained"),
        "iter_01/cand_01": ("valid", "trained"),
    }
    think = cands["iter_00/cand_00"]["code"]
    assert "def compute_reward" in think and "<think>" not in think and "rocking" not in think


def test_show_prints_tokens_and_cost(live: SimpleNamespace) -> None:
    rc, out, err = cli("show", live.run)
    assert rc == 0, err
    records = [
        json.loads(p.read_text()) for p in (live.run / "llm").glob("*.json")
    ]  # failed requests too: they got no answer, so add nothing
    prompt = sum(c["usage"]["prompt_tokens"] for r in records for c in r["completions"])
    completion = sum(c["usage"]["completion_tokens"] for r in records for c in r["completions"])
    cost = sum(c["usage"]["cost_usd"] for r in records for c in r["completions"])
    assert prompt > 0 and cost > 0
    assert f"model usage: {prompt} prompt + {completion} completion tokens, cost ${cost:.4f}" in out
    assert "final comparison" in out


def test_key_is_never_written_or_printed(live: SimpleNamespace) -> None:
    assert files_containing(live.run, KEY) == []
    assert files_containing(live.run, "DISTINCTIVE") == []
    assert "DISTINCTIVE" not in live.printed


# ------------------------------------------------------------------ replay
def test_replay_without_the_server_gives_the_same_candidates(
    live: SimpleNamespace, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    rc, out, err = cli(
        "run", live.task, "--llm", f"replay:{live.run}", *LOOP_FLAGS, "--runs-dir", runs
    )
    assert rc == 0, out + err
    replayed = only_run(runs)
    assert candidates(replayed) == candidates(live.run)
    assert "cost $0.0000" in out  # the recorded run paid for the tokens
    records = sorted(p.name for p in (replayed / "llm").glob("*.json"))
    assert records == ["iter_00-repair-01-r1.json", "iter_00-sample.json", "iter_01-sample.json"]


def test_replay_of_another_task_description_fails_clearly(
    live: SimpleNamespace, tmp_path: Path
) -> None:
    task = write_task(tmp_path, "Park the car in the valley and keep it still.")
    rc, out, err = cli(
        "run", task, "--llm", f"replay:{live.run}", *LOOP_FLAGS, "--runs-dir", tmp_path / "r"
    )
    assert rc == 2
    line = error_line(err)
    assert line.startswith("error: Cannot replay 'iter_00-sample'")
    assert "message 1 (user) differs at line" in line
    assert "Park the car" in line and "Traceback" not in out + err


# ------------------------------------------------------------------ key hygiene on 401
def test_rejected_key_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    runs = tmp_path / "runs"
    with FakeOpenAI(Answers()) as server:
        server.always = "401"  # echoes the key it got in the error message
        rc, out, err = cli(
            "run", write_task(tmp_path), "--llm", "openai", "--base-url", server.url,
            "--model", "gpt-4o-mini", *LOOP_FLAGS, "--runs-dir", runs,
        )  # fmt: skip
        assert len(server.chat_requests) == 1  # not retried
    assert rc == 2
    line = error_line(err)
    assert "rejected the API key" in line and "OPENAI_API_KEY" in line
    assert "Incorrect API key provided: ***" in line
    assert "DISTINCTIVE" not in out + err and "Traceback" not in out + err
    assert files_containing(runs, "DISTINCTIVE") == []


def test_rejected_key_through_the_console_script(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    env.pop("OPENAI_BASE_URL", None)
    with FakeOpenAI(Answers()) as server:
        server.always = "401"
        proc = subprocess.run(
            [console_script(), "run", str(write_task(tmp_path)), "--llm", "openai",
             "--base-url", server.url, "--model", "gpt-4o-mini", *LOOP_FLAGS,
             "--runs-dir", str(runs)],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
    printed = proc.stdout + proc.stderr
    assert proc.returncode == 2, printed
    assert "OPENAI_API_KEY" in proc.stderr and "Traceback" not in printed
    error_line(proc.stderr)
    assert "DISTINCTIVE" not in printed
    assert files_containing(runs, "DISTINCTIVE") == []


# ------------------------------------------------------------------ budget
def test_tiny_max_cost_stops_before_asking(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeOpenAI(Answers()) as server:
        base = ["--llm", "openai", "--base-url", server.url, "--model", "gpt-4o-mini"]
        rc, out, err = cli(
            "run", write_task(tmp_path), *base, "--max-cost", "0.0001", *LOOP_FLAGS,
            "--runs-dir", runs,
        )  # fmt: skip
        assert server.chat_requests == []
        assert rc == 2
        assert "stopping the search at iteration 0" in out
        assert "--max-cost $0.0001" in out  # the budget as given, not rounded to $0.00
        line = error_line(err)
        assert "No candidate trained" in line
        assert f"eureka-lab resume {runs.resolve()}" in err and "--max-cost USD" in err
        run = only_run(runs)
        show_rc, show_out, _ = cli("show", run)
        assert show_rc == 0 and "cost $0.0000" in show_out

        # Resuming with a larger budget asks the model (which now fails, to stay quick).
        server.always = "500"
        rc, out, err = cli("resume", run, "--max-cost", "5")
        assert rc == 2 and "no usable answer" in err and "eureka-lab resume" in err
        assert len(server.chat_requests) == 6
        assert json.loads((run / "config.json").read_text())["llm_settings"]["max_cost"] == 5


# ------------------------------------------------------------------ manual mode
def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if proc.poll() is not None:
            raise AssertionError(f"eureka-lab exited ({proc.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} after {timeout} s")
        time.sleep(0.1)


def _save(path: Path, text: str) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_text(text)
    tmp.rename(path)


def test_manual_mode_from_a_non_interactive_shell(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    log = tmp_path / "log.txt"
    flags = ["--iterations", "1", "--samples", "2", "--workers", "2", "--final-seeds", "1"]
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [console_script(), "run", str(write_task(tmp_path)), "--llm", "manual", *flags,
             "--runs-dir", str(runs)],
            stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not runs.is_dir() or not run_dirs(runs):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        run = only_run(runs)
        sample = run / "manual" / "iter_00-sample"
        _wait_for(sample / "prompt.md", proc)
        page = (sample / "prompt.md").read_text()
        assert "answer_1.md" in page and "answer_2.md" in page and "compute_reward" in page
        _save(sample / "answer_1.md", answer("broken_index"))
        _save(sample / "answer_2.md", answer("think_height"))
        repair = run / "manual" / "iter_00-repair-00-r1"
        _wait_for(repair / "prompt.md", proc)
        assert "IndexError" in (repair / "prompt.md").read_text()
        _save(repair / "answer_1.md", answer("repaired"))
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    printed = log.read_text()
    assert rc == 0, printed
    assert "[manual] The prompt is in" in printed and "paste" not in printed.lower()
    assert {k: v["result"] for k, v in candidates(run).items()} == {
        "iter_00/cand_00": None,
        "iter_00/cand_00_r1": "trained",
        "iter_00/cand_01": "trained",
    }
    assert (run / "summary.json").is_file()


# ------------------------------------------------------------------ settings file
NO_CODE = "I am sorry, I cannot write code today."


def test_settings_file_is_honoured_and_flags_override_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    task = write_task(tmp_path)
    flags = ["--iterations", "1", "--samples", "2", "--workers", "1", "--runs-dir", "runs"]
    with FakeOpenAI(lambda body, i: NO_CODE) as server:
        Path("eureka-lab.toml").write_text(
            f'[llm]\nbackend = "openai"\nmodel = "qwen2.5-coder"\nbase_url = "{server.url}"\n'
            "temperature = 0.3\nmax_tokens = 700\n"
        )
        # Answers without code: two samples, two repairs, nothing to train.
        rc, out, err = cli("run", task, *flags)
        assert rc == 2 and "No candidate trained" in err
        assert "model backend: openai" in out
        bodies = [r["body"] for r in server.chat_requests]
        assert len(bodies) == 3
        assert {(b["model"], b["temperature"], b["max_tokens"]) for b in bodies} == {
            ("qwen2.5-coder", 0.3, 700)
        }

        rc, out, err = cli("run", task, *flags, "--model", "llama3", "--temperature", "0.9")
        assert rc == 2
        bodies = [r["body"] for r in server.chat_requests[3:]]
        assert {(b["model"], b["temperature"], b["max_tokens"]) for b in bodies} == {
            ("llama3", 0.9, 700)
        }

    other = tmp_path / "other.toml"
    other.write_text('[llm]\nmodel = "m"\ntemprature = 0.2\n')
    before = run_dirs(tmp_path / "runs")
    rc, out, err = cli("run", task, *flags, "--config", other)
    assert rc == 2
    line = error_line(err)
    assert str(other) in line and "temprature" in line and "'temperature'" in line
    assert run_dirs(tmp_path / "runs") == before  # no run created


def test_progress_shows_cost_so_far(live: SimpleNamespace) -> None:
    assert "(run so far $" in live.printed
