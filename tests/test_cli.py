"""The command line: listings, and one clear error line (exit 2, no traceback) for bad input."""

from __future__ import annotations

import pytest

from eureka_lab.cli import main
from eureka_lab.task.load import builtin_task_files, load_task


def test_tasks_lists_every_builtin(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in builtin_task_files():
        task = load_task(name)
        assert name in out and task.env_id in out and f"{task.timesteps:,}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "CartPole-v1"], "add --description"),
        (["run", "CartPole-v1", "--description", "balance", "--llm", "offline"], "seed rewards"),
        (["run", "CartPol-v1", "--description", "balance"], "Did you mean 'CartPole-v1'"),
        (["run", "mountain_car", "--llm", "gpt"], "Unknown backend 'gpt'"),
        (["show", "/nonexistent/run"], "is not a run directory"),
        (["resume", "/nonexistent/run"], "is not a run directory"),
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
    with pytest.raises(Exception, match="is not a run directory"):
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
