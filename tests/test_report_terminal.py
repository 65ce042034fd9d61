"""What a person sees while a run goes: a bar per training that reported a checkpoint (its
checkpoints done of those it will report, never more), its own clock, a line for the
trainings waiting for a worker; and a line for each answer a person gave."""

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
    assert re.search(r"iter_00/cand_00 .* 3/10 checkpoints 0:0[45]", lines[0]), lines
    assert lines[1] == "2 trainings waiting for a worker"  # no bar, no clock
    reporter({"event": "progress", "running": {"iter_00/cand_00": [11, 10, 15.0]}, "waiting": 0})
    lines = _screen(reporter)
    assert "11/11 checkpoints" in lines[0] and "11/10" not in lines[0]  # never past the end
    assert len(lines) == 1
    reporter.progress.stop()


def test_a_finished_training_stops_its_clock():
    """A training that reported its last checkpoint keeps its bar (it is being evaluated)
    with its clock stopped; the clock started when the training did, not when its bar
    appeared at its first checkpoint."""
    reporter, _ = _reporter()
    reporter({"event": "progress", "running": {"a": [10, 10, 30.0]}, "waiting": 0})
    (task,) = reporter.progress.tasks
    ended = task.fields["ended"]
    assert ended is not None and ended - task.fields["began"] >= 30.0
    reporter({"event": "progress", "running": {"a": [10, 10, 30.0], "b": [1, 10, 1.0]}})
    assert task.fields["ended"] == ended
    assert "0:30" in _screen(reporter)[0]
    reporter.progress.stop()


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
