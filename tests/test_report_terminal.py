"""Progress lines people read while trainings run."""

from __future__ import annotations

import io

from rich.console import Console

from eureka_lab.report import terminal
from eureka_lab.report.terminal import PlainReporter, progress_line


def _event(running, waiting=0):
    return {"event": "progress", "running": running, "waiting": waiting}


def test_a_progress_line_names_trainings_running_and_counts_trained_and_waiting():
    line = progress_line(_event({"a": [3, 10], "b": [10, 10], "c": [10, 10]}, waiting=2))
    assert line == "  training: a 3/10 checkpoints; 2 trained; 2 waiting"


def test_a_progress_line_when_every_training_is_done():
    assert progress_line(_event({"a": [10, 10]})) == "  training: finishing; 1 trained"


def test_plain_output_prints_progress_at_most_every_interval(monkeypatch):
    clock = iter([100.0, 101.0, 100.0 + terminal.PROGRESS_EVERY + 1])
    monkeypatch.setattr(terminal.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    reporter = PlainReporter(Console(file=out, width=200))
    for done in (1, 2, 3):
        reporter(_event({"a": [done, 10]}))
    assert out.getvalue().splitlines() == [
        "  training: a 1/10 checkpoints",
        "  training: a 3/10 checkpoints",
    ]
