"""The run store: atomic writes, run creation, the event log, model requests, candidates."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import shutil
import threading
import warnings

import pytest
from pydantic import ValidationError

from eureka_lab.backends.base import Completion, Message, Prompt, Usage
from eureka_lab.cli import main
from eureka_lab.core import files as files_mod
from eureka_lab.core.errors import RunError, RunFolderWarning
from eureka_lab.core.files import MAX_RECORD
from eureka_lab.report.html import write_report
from eureka_lab.report.results import load_run
from eureka_lab.runs.records import (
    FORMAT_VERSION,
    Candidate,
    Checkpoint,
    CheckpointStats,
    Iteration,
    Ranking,
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

from support.runs import MP4, written_run


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


# --------------------------------------------------------------------------- a shared run
# A run folder someone shares is untrusted input for every reader (show, report, load_run,
# the ranking page): a file in it may be a link out, a pipe, huge, or not what its name says.
# Each bad file is one warning naming it, and the rest of the run still reads.
SECRET = b"\x00\x00\x00\x18ftypmp42 the victim's private file"  # even an mp4's magic bytes


@pytest.fixture
def shared(tmp_path):
    """A run someone shares, and a file of yours beside it."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "secret").write_bytes(SECRET)
    return written_run(tmp_path / "runs")


def _swap(path, link_to):
    path.unlink(missing_ok=True)
    path.symlink_to(link_to)


@pytest.mark.parametrize("embed", [True, False])
def test_a_video_that_links_out_is_neither_embedded_nor_linked(shared, tmp_path, embed):
    _swap(shared.root / "iter_00/cand_00/rollout.mp4", tmp_path / "victim" / "secret")
    with pytest.warns(RunFolderWarning, match=r"cand_00/rollout.mp4 is a symbolic link"):
        page = write_report(shared.root, tmp_path / "r.html", embed_videos=embed).read_text()
    assert "<video" not in page and base64.b64encode(SECRET).decode() not in page
    assert "iter_00/cand_01" in page  # the rest of the run is reported


def test_a_folder_that_links_out_is_not_read(shared, tmp_path):
    elsewhere = tmp_path / "victim" / "cand_01"
    shutil.copytree(shared.root / "iter_00/cand_01", elsewhere)
    (elsewhere / "reward.py").write_text("VICTIM'S CODE")
    shutil.rmtree(shared.root / "iter_00/cand_01")
    (shared.root / "iter_00/cand_01").symlink_to(elsewhere)
    with pytest.warns(RunFolderWarning, match=r"is a symbolic link \(at 'cand_01'\)"):
        run = load_run(shared.root)
        assert [c.id for c in run.candidates] == ["iter_00/cand_00"]
        assert run.best is None  # the summary's best is that folder
        assert "VICTIM" not in write_report(shared.root, tmp_path / "r.html").read_text()


def test_a_candidate_record_cannot_send_reads_outside_the_run(shared, tmp_path):
    """A candidate's id names the files read for it: one that is not its folder is refused."""
    (tmp_path / "victim" / "reward.py").write_text("VICTIM'S CODE")
    path = shared.root / "iter_00/cand_00/candidate.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "id": "../../victim"}))
    with pytest.warns(RunFolderWarning, match=r"names candidate '../../victim'"):
        run = load_run(shared.root)
        assert [c.id for c in run.candidates] == ["iter_00/cand_01"]
        assert [c.code for c in run.candidates if "VICTIM" in (c.code or "")] == []


def test_a_pipe_does_not_hang_a_reader(shared):
    fifo = shared.root / "iter_00/cand_00/result.json"
    fifo.unlink()
    os.mkfifo(fifo)
    results: list = []
    reader = threading.Thread(
        target=lambda: results.append(load_run(shared.root).candidates[0].result), daemon=True
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reader.start()
        reader.join(10)
        hung = reader.is_alive()
        if hung:  # it blocks opening the pipe: let it go before failing
            os.close(os.open(fifo, os.O_WRONLY))
            reader.join(10)
    assert not hung, "reading a pipe in a run folder blocked the reader"
    assert results == [None]
    assert [str(w.message) for w in caught if "result.json is not a regular file" in str(w.message)]


def test_a_huge_file_is_not_read(shared):
    with open(shared.root / "iter_00/cand_00/response.md", "wb") as f:
        f.truncate(MAX_RECORD + 1)  # sparse: no disk used
    with pytest.warns(RunFolderWarning, match=r"response.md is over 16,777,216 bytes"):
        response = load_run(shared.root).candidate("iter_00/cand_00").response
    assert response is None, f"read {len(response):,} characters"


def test_a_file_of_the_wrong_type_is_not_offered(shared):
    (shared.root / "iter_00/cand_00/rollout.mp4").write_text("<script>alert(1)</script>")
    (shared.root / "iter_00/cand_00/policy.safetensors").write_bytes(b"\x00" * 64)
    cand = load_run(shared.root).candidate("iter_00/cand_00")
    with pytest.warns(RunFolderWarning, match=r"rollout.mp4 is not an mp4 video"):
        assert cand.video_path is None
    with pytest.warns(RunFolderWarning, match=r"policy.safetensors is not a safetensors file"):
        assert cand.policy_path is None


def test_a_good_run_reads_as_before(shared):
    cand = load_run(shared.root).candidate("iter_00/cand_00")
    assert cand.video_path == shared.root / "iter_00/cand_00/rollout.mp4"
    assert cand.policy_path == shared.root / "iter_00/cand_00/policy.safetensors"
    assert shared.video("iter_00/cand_00") == MP4


def test_stray_folders_and_records_of_the_wrong_shape_do_not_stop_a_reader(shared, tmp_path):
    (shared.root / "iter_notes").mkdir()  # not an iteration
    (shared.root / "llm").mkdir()
    (shared.root / "llm" / "iter_00-sample.json").write_text('{"completions": "all of them"}')
    with pytest.warns(RunFolderWarning, match=r"iter_00-sample.json does not hold a valid"):
        run = load_run(shared.root)
        assert [i.iteration for i in run.iterations] == [0] and run.usage == Usage()
        assert run.candidate("iter_00/cand_00").prompt == ()
        assert "iter_00/cand_01" in write_report(shared.root, tmp_path / "r.html").read_text()


def test_show_names_a_bad_file_once_and_shows_the_rest(shared, capsys):
    (shared.root / "iter_00/cand_00/result.json").write_text("{not json")
    assert main(["show", str(shared.root)]) == 0
    out, err = capsys.readouterr()
    assert "cand_01" in out and "final comparison" in out
    (line,) = err.splitlines()
    assert line.startswith("warning: ") and "cand_00/result.json is not valid JSON" in line


def test_a_config_that_links_out_is_refused_with_a_message(shared, tmp_path, capsys):
    victim = tmp_path / "victim" / "config.json"
    shutil.copy(shared.root / CONFIG, victim)
    _swap(shared.root / CONFIG, victim)
    assert main(["show", str(shared.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "config.json is a symbolic link" in err


@pytest.mark.parametrize("log", [EVENTS, "rankings.jsonl"])
def test_an_append_does_not_write_through_a_link(shared, tmp_path, log):
    secret = tmp_path / "victim" / "secret"
    _swap(shared.root / log, secret)
    ranking = Ranking(annotator="a", time=0.0, iteration=0, candidates=["x"], order=[["x"]])
    with pytest.raises(RunError, match=f"{log} is a symbolic link"):
        shared.event("x") if log == EVENTS else shared.append_ranking(ranking)
    assert secret.read_bytes() == SECRET


def _rank_twenty(root, worker: int) -> None:
    """One process of several answering the same twenty questions (each its own order)."""
    store = RunStore.open(root)
    order = [["a"], ["b"]] if worker % 2 else [["b"], ["a"]]
    for it in range(20):
        store.append_ranking(
            Ranking(annotator="person", time=0.0, iteration=it, candidates=["a", "b"], order=order)
        )


def test_processes_racing_to_rank_keep_one_whole_line_per_question(run):
    forked = multiprocessing.get_context("fork")
    workers = [forked.Process(target=_rank_twenty, args=(run.root, w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    lines = (run.root / "rankings.jsonl").read_bytes().splitlines()
    rankings = [Ranking.model_validate_json(line) for line in lines]  # every line whole
    assert [r.iteration for r in rankings] == list(range(20))


def test_a_ranking_after_a_torn_line_is_kept(run):
    (run.root / "rankings.jsonl").write_text('{"annotator": "person", "ti')  # killed mid-append
    ranking = Ranking(annotator="a", time=0.0, iteration=0, candidates=["x"], order=[["x"]])
    assert run.append_ranking(ranking) == ranking
    assert run.rankings() == [ranking]
