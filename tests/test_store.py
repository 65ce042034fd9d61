"""The run store: atomic writes, run creation, the event log, model requests, candidates."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from eureka_lab.backends.base import Completion, Message, Prompt, Usage
from eureka_lab.core import files as files_mod
from eureka_lab.core.errors import RunError
from eureka_lab.runs.records import (
    FORMAT_VERSION,
    Candidate,
    Checkpoint,
    CheckpointStats,
    Iteration,
    TrainingResult,
)
from eureka_lab.runs.store import (
    CONFIG,
    EVENTS,
    RunStore,
    atomic_write,
    candidate_id,
    read_json,
)


@pytest.mark.parametrize("new", ["new text", b"new bytes"])
def test_atomic_write_replaces_content(tmp_path, new):
    path = tmp_path / "sub" / "file.txt"
    atomic_write(path, "old")
    atomic_write(path, new)
    assert (path.read_bytes() if isinstance(new, bytes) else path.read_text()) == new
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("fail_at", ["replace", "write"])
def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "file.json"
    atomic_write(path, "old content")

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    if fail_at == "replace":
        monkeypatch.setattr(files_mod.os, "replace", boom)
    else:
        monkeypatch.setattr(files_mod.os, "fsync", boom)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write(path, "new content")
    assert path.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_read_json_default_and_corrupt(tmp_path):
    assert read_json(tmp_path / "missing.json", default=7) == 7
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunError, match="bad.json is not valid JSON"):
        read_json(bad)


def test_create_names_run_and_writes_config(tmp_path):
    config = {"task": "cartpole", "k": 3}
    a = RunStore.create(tmp_path / "runs", "cartpole", config)
    b = RunStore.create(tmp_path / "runs", "cartpole", config)
    assert a.root.parent == (tmp_path / "runs").resolve()
    assert a.root.name.endswith("-cartpole")
    assert a.root != b.root  # same second: a suffix keeps names unique
    assert b.root.name.startswith(a.root.name[:15])
    assert json.loads((a.root / CONFIG).read_text()) == {"format": FORMAT_VERSION, **config}
    assert RunStore.open(a.root).config == {"format": FORMAT_VERSION, **config}


@pytest.mark.parametrize(
    ("version", "message"),
    [(None, "run format 1; .* run the task again"), (99, "run format 99; .* Upgrade")],
)
def test_open_refuses_another_format_naming_the_version(tmp_path, version, message):
    root = tmp_path / "old-run"
    root.mkdir()
    config = {"task": {"name": "t"}} if version is None else {"format": version}
    (root / CONFIG).write_text(json.dumps(config))
    with pytest.raises(RunError, match=message):
        RunStore.open(root)


def test_create_in_unwritable_dir_names_runs_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(RunError, match="--runs-dir") as err:
        RunStore.create(blocker / "runs", "t", {})
    assert str(blocker) in str(err.value)


def test_open_non_run_dir(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        RunStore.open(tmp_path)


@pytest.fixture
def run(tmp_path):
    return RunStore.create(tmp_path, "t", {"x": 1})


def test_events_round_trip_and_torn_last_line_skipped(run):
    run.event("start", iteration=0)
    run.event("done", fitness=1.5)
    with open(run.root / EVENTS, "a") as f:
        f.write('{"time": 1, "event": "tor')  # killed mid-write
    events = list(run.events())
    assert [e["event"] for e in events] == ["start", "done"]
    assert events[1]["fitness"] == 1.5 and "time" in events[0]


def test_event_after_torn_line_is_kept(run):
    run.event("start")
    with open(run.root / EVENTS, "a") as f:
        f.write('{"time": 1, "ev')  # killed mid-write...
    resumed = RunStore.open(run.root)  # ...then the run is resumed
    resumed.event("resumed", iteration=2)
    resumed.event("done")
    assert [e["event"] for e in resumed.events()] == ["start", "resumed", "done"]


def test_events_without_log(run):
    assert list(run.events()) == []


def _prompt(key="iter_01/sample"):
    return Prompt(
        messages=(Message("system", "sys"), Message("user", "hi")),
        purpose="sample",
        iteration=1,
        key=key,
    )


def _completion(text="def f(): pass", tokens=10, cost=0.5, error=None):
    return Completion(
        text=text,
        usage=Usage(prompt_tokens=tokens, completion_tokens=2 * tokens, cost_usd=cost),
        error=error,
        model="m1",
        meta={"finish": "stop"},
    )


def test_save_load_request_round_trip(run):
    comps = [_completion(), _completion(text=None, error="refused", tokens=1, cost=0.0)]
    run.save_request(_prompt(), 2, comps, backend="fake")
    assert run.load_request("iter_01/sample") == comps
    assert run.load_request("iter_02/sample") is None
    (record,) = run.requests()
    assert record["key"] == "iter_01/sample" and record["backend"] == "fake"
    assert record["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]
    assert not any(p.name.endswith(".tmp") for p in (run.root / "llm").iterdir())


def test_failed_request_not_loaded_nor_listed_but_counted_in_usage(run):
    run.save_request(_prompt("iter_01/sample"), 1, [_completion(tokens=10, cost=0.5)], "fake")
    run.save_request(
        _prompt("iter_02/sample"), 1, [_completion(tokens=3, cost=0.25)], "fake", failed=True
    )
    assert run.load_request("iter_02/sample") is None  # resume asks again
    assert [r["key"] for r in run.requests()] == ["iter_01/sample"]
    assert len(run.requests(include_failed=True)) == 2
    assert run.usage() == Usage(prompt_tokens=13, completion_tokens=26, cost_usd=0.75)


def test_typed_records_round_trip(run):
    for it, idx in [(1, 0), (1, 1), (2, 0)]:
        run.save_candidate(Candidate(id=candidate_id(it, idx), iteration=it, index=idx))
    result = TrainingResult(status="trained", fitness=3.0, components=["a"])
    run.save_result(candidate_id(1, 1), result)
    os.makedirs(run.root / "iter_02/cand_05")  # no candidate record yet: skipped
    cands = run.candidates()
    assert [c.id for c in cands] == ["iter_01/cand_00", "iter_01/cand_01", "iter_02/cand_00"]
    assert run.result("iter_01/cand_00") is None
    assert run.result("iter_01/cand_01") == result
    assert [c.id for c in run.candidates(iteration=2)] == ["iter_02/cand_00"]
    assert run.iterations() == [1, 2]
    cps = [Checkpoint(step=5, components={"a": {"mean": 1, "min": 0, "max": 2}}, fitness=1.0)]
    run.save_checkpoints("iter_01/cand_01", cps)
    assert run.checkpoints("iter_01/cand_01") == cps
    it = Iteration(iteration=1, candidates=["iter_01/cand_00"], trained=0)
    run.save_iteration(it)
    assert run.iteration(1) == it and run.iteration(2) is None


def test_a_record_that_breaks_its_schema_names_the_file(run):
    path = run.root / "iter_01/cand_00/result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"status": "trained", "fitness": 1e9, "forged": True}))
    with pytest.raises(RunError, match="result.json does not hold a valid TrainingResult"):
        run.result("iter_01/cand_00")


def test_records_from_candidate_processes_are_bounded():
    huge = "x" * 10_000_000
    stats = CheckpointStats(step=1, components={huge: {"mean": 0, "min": 0, "max": 0}})
    (name,) = stats.components
    assert len(name) < 200
    with pytest.raises(ValidationError, match="at most 32"):
        CheckpointStats(
            step=1, components={str(i): {"mean": 0, "min": 0, "max": 0} for i in range(33)}
        )
    with pytest.raises(ValidationError, match="finite"):
        CheckpointStats(step=1, components={"a": {"mean": float("nan"), "min": 0, "max": 0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        CheckpointStats(step=1, components={}, fitness=1e9)  # training never scores itself
    bad = TrainingResult(status="failed", reason="\ud800 [/oops] " + huge)
    assert len(bad.reason) < 4100 and "\ud800" not in bad.reason


@pytest.mark.parametrize(
    "args, expected",
    [((1, 0), "iter_01/cand_00"), ((12, 3, 2), "iter_12/cand_03_r2")],
)
def test_candidate_id(args, expected):
    assert candidate_id(*args) == expected
