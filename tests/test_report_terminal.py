"""What a person sees while a run goes: a bar per training running that reported a
checkpoint (its checkpoints done of those it will report), its own clock, a line for the
trainings done and those waiting for a worker; and a line for each answer a person gave."""

from __future__ import annotations

import io
import re

from rich.console import Console

from eureka_lab.report.terminal import RichReporter, describe_event, progress_line


def _reporter() -> tuple[RichReporter, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    return RichReporter(console), out


def _screen(reporter: RichReporter) -> list[str]:
    console = Console(file=io.StringIO(), width=80, color_system=None, record=True)
    console.print(*reporter.progress.get_renderables())
    return console.export_text().splitlines()


def test_bars_count_checkpoints_of_the_real_total_and_name_their_unit():
    reporter, _ = _reporter()
    reporter({"event": "progress", "running": {"iter_00/cand_00": [3, 10, 4.0]}, "waiting": 2})
    lines = _screen(reporter)
    assert re.search(r"iter_00/cand_00 .* 3/10 checkpoints 0:0[45]$", lines[0]), lines
    assert lines[1] == "2 waiting for a worker"  # no bar, no clock
    reporter.progress.stop()


def test_a_finished_training_leaves_the_bars_and_is_counted():
    """Trainings done wait for the others before they are scored: they were bars stuck at
    10/10 (11/10 before) with their clocks running; now one line counts them."""
    reporter, _ = _reporter()
    running = {"a": [10, 10, 30.0], "b": [4, 10, 12.0], "c": [11, 10, 31.0]}
    reporter({"event": "progress", "running": running, "waiting": 3})
    lines = _screen(reporter)
    assert len(lines) == 2 and lines[0].startswith("b ") and "4/10 checkpoints 0:12" in lines[0]
    assert lines[1] == "2 trained (scored once the others are); 3 waiting for a worker"
    assert not any("11/10" in line or "10/10" in line for line in lines)
    reporter({"event": "progress", "running": {"a": [10, 20, 30.0]}, "waiting": 0})
    lines = _screen(reporter)  # a training continued (halving): its bar is back
    assert any(line.startswith("a ") and "10/20 checkpoints" in line for line in lines)
    reporter({"event": "iteration_finished", "iteration": 0, "trained": 3, "best": None})
    assert not reporter.bars and not reporter.finished and not reporter.progress.live.is_started


def test_plain_progress_says_what_waits():
    line = progress_line({"running": {"a": [4, 10, 2.0]}, "waiting": 3})
    assert line == "  training: a 4/10 checkpoints; 3 waiting for a worker"


def test_a_persons_answers_are_acknowledged():
    iteration = {"event": "ranking_received", "iteration": 0, "final": False}
    assert (
        describe_event({**iteration, "order": [["iter_00/cand_01"], ["iter_00/cand_00"]]})
        == "ranking for iteration 0 received: best iter_00/cand_01, worst iter_00/cand_00"
    )
    assert (
        describe_event({**iteration, "order": [["x"], ["y", "z"]]})
        == "ranking for iteration 0 received: best x, worst y = z"
    )
    assert describe_event({**iteration, "order": [["x", "y"]]}).endswith("can't tell them apart")
    final = {"event": "ranking_received", "iteration": 1, "final": True}
    labels = {"A": "final/human/seed_1000", "B": "final/best/seed_1000"}
    order = [["final/best/seed_1000"], ["final/human/seed_1000"]]
    assert (
        describe_event({**final, "order": order, "labels": labels})
        == "final verdict received: the run's best reward is better (shown as B)"
    )
    assert describe_event({**final, "order": [order[0] + order[1]], "labels": labels}) == (
        "final verdict received: can't tell them apart"
    )


def test_plain_output_prints_progress_at_most_every_interval(monkeypatch):
    from eureka_lab.report import terminal

    clock = iter([100.0, 101.0, 100.0 + terminal.PROGRESS_EVERY + 1])
    monkeypatch.setattr(terminal.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    reporter = terminal.PlainReporter(Console(file=out, width=200))
    for done in (1, 2, 3):
        reporter({"event": "progress", "running": {"a": [done, 10, 1.0]}, "waiting": 0})
    assert out.getvalue().splitlines() == [
        "  training: a 1/10 checkpoints",
        "  training: a 3/10 checkpoints",
    ]
