"""The command line: listings, and one clear error line (exit 2, no traceback) for bad input."""

from __future__ import annotations

import re

import pytest

from eureka_lab.cli import main
from eureka_lab.task.load import builtin_task_files, load_task

from support.runs import written_run


def test_tasks_lists_every_builtin(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in builtin_task_files():
        task = load_task(name)
        assert name in out and task.env_id in out and f"{task.timesteps:,}" in out


def test_tasks_wraps_each_description_at_a_word_in_80_columns(monkeypatch, capsys):
    """Descriptions were cut mid-word at 80 columns: now each is whole, wrapped at words."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    right = " ".join(re.split(r"\s{2,}", line.strip())[-1] for line in out.splitlines())
    for name in builtin_task_files():
        assert " ".join(load_task(name).description.split()) in right, name  # whole, not cut


def test_show_prints_the_best_reward_and_what_its_policy_did(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    store = written_run(tmp_path)
    assert main(["show", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "the best reward, iter_00/cand_01" in out
    assert "def compute_reward(obs, action, next_obs, info):  # 1" in out
    assert "cand_01 * (best)" in out  # the mark fits its column: no wrap inside it
    boxed = [line for line in out.splitlines() if line[:1] in "│┃┏┡└╭╰"]
    assert boxed and all(len(line) <= 80 for line in boxed)  # tables and the code fit


def test_show_bounds_and_escapes_the_code(tmp_path, capsys):
    store = written_run(tmp_path)
    hostile = "def compute_reward(obs, action, next_obs, info):\n    x = '\x1b[2J[red]x[/red]'\n"
    store.save_reward_code("iter_00/cand_01", hostile + "    y = 1\n" * 100)
    assert main(["show", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b[2J" not in out and "\\u001b[2J[red]x[/red]" in out
    assert "42 more lines: " in out and "reward.py" in out


def test_show_of_a_folder_of_runs_lists_them(tmp_path, capsys):
    done = written_run(tmp_path)
    unfinished = written_run(tmp_path, task_name="pole")
    (unfinished.root / "summary.json").unlink()
    (tmp_path / "notes").mkdir()  # not a run: left out
    assert main(["show", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"2 runs in {tmp_path}" in out
    for store in (done, unfinished):
        assert store.root.name in out
    assert "finished" in out and "unfinished" in out and "tiny_car" in out and "pole" in out
    assert "1 of ? iterations" in out  # written without loop settings
    assert "eureka-lab show RUN_DIR" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "CartPole-v1"], "add --description"),
        (["run", "CartPole-v1", "--description", "balance", "--llm", "offline"], "seed rewards"),
        (["run", "CartPol-v1", "--description", "balance"], "Did you mean 'CartPole-v1'"),
        (["run", "mountain_car", "--llm", "gpt"], "Unknown backend 'gpt'"),
        (["show", "/nonexistent/run"], "/nonexistent/run does not exist"),
        (["resume", "/nonexistent/run"], "/nonexistent/run does not exist"),
        (["show", "."], "is not a run directory (no config.json)"),
    ],
)
def test_bad_input_gives_one_clear_line(argv, message, capsys, tmp_path):
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("error: ")


def test_bad_task_file_names_the_field(tmp_path, capsys):
    path = tmp_path / "task.yaml"
    path.write_text(
        "name: t\nenv_id: CartPole-v1\ndescription: d\ntimesteps: 10\ntrainr:\n  n_envs: 2\n"
    )
    assert main(["run", str(path), "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'trainr'" in err and "Did you mean 'trainer'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--executor", "locl"], "Unknown executor 'locl'. Did you mean 'local'?"),
        (["--selection", "fitnes"], "Unknown selection mode 'fitnes'. Did you mean 'fitness'?"),
        (["--feedback", "reflect"], "Unknown feedback mode 'reflect'"),
        (["--repair-rounds", "-1"], "--repair-rounds must be 0 or more"),
    ],
)
def test_library_errors_reach_the_user_as_flags(argv, message, tmp_path, capsys):
    assert main(["run", "mountain_car", *argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ")
    assert not list(tmp_path.iterdir())  # refused before a run folder was made


@pytest.mark.parametrize("flag", ["--samples", "--iterations", "--timesteps", "--workers"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_impossible_numbers_are_refused(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "mountain_car", flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be positive" in capsys.readouterr().err


def test_unwritable_runs_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "mountain_car", "--runs-dir", str(blocker / "runs")]) == 2
    assert "--runs-dir" in capsys.readouterr().err


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="does not exist"):
        main(["show", "/nonexistent/run", "--debug"])


def test_full_disk_names_the_fix(tmp_path, capsys, monkeypatch):
    import errno

    import eureka_lab.runs.store

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(eureka_lab.runs.store, "atomic_write", full)
    assert main(["run", "mountain_car", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "The disk is full at " in err and "No space left on device" in err
    (run,) = tmp_path.iterdir()
    assert f"Free some space on it, then continue with: eureka-lab resume {run}" in err
    assert "Traceback" not in err


def _person_ranked(store, summary: bool = True):
    store.save_config({**store.config, "loop": {"selection": "human", "iterations": 2}})
    if not summary:
        (store.root / "summary.json").unlink()
    return store


def test_rank_on_a_run_that_waits_for_nothing_says_so(tmp_path, capsys):
    finished = _person_ranked(written_run(tmp_path))
    assert main(["rank", str(finished.root)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        f"nothing to rank: {finished.root} has finished (0 rankings recorded; "
        f"eureka-lab show {finished.root})"
    )
    stopped = _person_ranked(written_run(tmp_path), summary=False)
    assert main(["rank", str(stopped.root)]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    assert out.startswith(f"nothing to rank now: {stopped.root} stopped before a ranking")
    assert f"eureka-lab resume {stopped.root}" in out


def test_rank_on_a_run_ranked_by_its_score_is_refused(tmp_path, capsys):
    store = written_run(tmp_path)
    (store.root / "summary.json").unlink()
    assert main(["rank", str(store.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "ranked by --selection fitness, not by a person" in err
    assert len(err.strip().splitlines()) == 1


def test_a_run_waits_for_a_ranking_asked_after_its_last_answer(tmp_path):
    import json
    import time

    from eureka_lab.cli import waits_for_a_ranking
    from eureka_lab.runs.records import Ranking

    store = _person_ranked(written_run(tmp_path), summary=False)
    assert not waits_for_a_ranking(store)
    asked = {"event": "ranking_waiting", "time": time.time(), "question": None}
    with (store.root / "events.jsonl").open("a") as f:
        f.write(json.dumps(asked) + "\n")
    assert waits_for_a_ranking(store)
    answer = Ranking(annotator="person", time=time.time() + 1, iteration=0,
                     candidates=["a", "b"], order=[["a"], ["b"]])  # fmt: skip
    store.append_ranking(answer)
    assert not waits_for_a_ranking(store)
