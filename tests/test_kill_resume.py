"""Kill -9 the orchestrator at chosen moments, resume, and check that the run ends exactly
as an uninterrupted one: every candidate once, one result and one fitness record each,
nothing that had a result trained or scored again, no temporary file left, no job alive.

The moments come from ``support/killpoints.py`` (the process kills itself with SIGKILL in the
middle of a write, between training and evaluation, while the model is asked, ...), plus
kills from outside after random delays with a fixed seed. Each test kills one run several
times in a row, resuming after each kill.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from support.runs import REAL, Session, check_whole, records, uninterrupted
from support.tasks import write_task


def test_killed_at_each_step_then_resumed_ends_as_if_never_killed(tmp_path):
    """The growing fake trainer in this process (--executor inline): the loop and the store
    alone, killed seven times in one run, at each kind of moment."""
    task = write_task(tmp_path, real=False)
    args = [str(task), "--llm", "offline", "--iterations", "2", "--samples", "3"]
    args += ["--final-seeds", "1", "--executor", "inline"]
    session = Session(tmp_path / "killed", args)
    for moment in [
        {"write": "*/iter_00/cand_01/result.json"},  # a record
        {"trained": 1},  # between a training and its evaluation
        {"write": "*/iter_00/iteration.json"},
        {"ask": "iter_01-sample"},  # a model request
        {"event": "candidate_trained", "nth": 2},  # the event log
        {"write": "*/final/*/policies/*"},  # a policy, in the final comparison
        {"write": "*/summary.json"},
    ]:
        session.killed_at(moment)
    session.finish()
    assert session.run is not None
    check_whole(session.run, torn_lines=1)
    assert records(session.run) == uninterrupted(tmp_path / "whole", args)


@pytest.mark.parametrize("trainer", ["growing", "restarting"])
def test_halving_killed_between_rounds_keeps_every_winner(tmp_path, trainer):
    """Successive halving, killed while a round trains (a trainer that cannot continue has
    then started the round again from zero) and after a round has sent its training state
    but before its result is recorded: the resumed run keeps the same winners and ends
    as an uninterrupted one."""
    task = write_task(tmp_path, real=False, trainer=trainer)
    args = [str(task), "--llm", "offline", "--iterations", "1", "--samples", "4"]
    args += ["--final-seeds", "1", "--executor", "inline", "--schedule", "halving"]
    session = Session(tmp_path / "killed", args)
    session.killed_at({"after": "training_started", "nth": 6})  # round 1 starts
    session.killed_at({"trained": 1})  # round 1 trained, its state sent, no result yet
    session.killed_at({"write": "*/iter_00/cand_*/result.json", "nth": 3})  # round 1's cut
    session.finish()
    assert session.run is not None
    check_whole(session.run, torn_lines=0)
    assert records(session.run) == uninterrupted(tmp_path / "whole", args)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The sandboxed task, and what an uninterrupted run of it records."""
    folder = tmp_path_factory.mktemp("real")
    task = write_task(folder, real=True)
    return task, uninterrupted(folder / "whole", [str(task), *REAL])


@pytest.mark.slow
def test_sandboxed_jobs_killed_at_chosen_moments(tmp_path, real_run):
    """The real executor (sandboxed job processes) and the sb3 trainer, killed six times in
    one run: no job outlives the orchestrator, and the run ends as an uninterrupted one."""
    task, whole = real_run
    session = Session(tmp_path / "killed", [str(task), *REAL])
    for moment in [
        {"write": "*/iter_00/cand_00/policies/*", "nth": 2},  # a policy, while jobs train
        {"trained": 1},  # between training and evaluation
        {"ask": "iter_01-sample"},  # a model request
        {"event": "final_started"},  # the event log
        {"write": "*/final/*/checkpoints.json"},  # while the final comparison trains
        {"write": "*/final/best/*/result.json"},  # a record of the final comparison
    ]:
        family = session.killed_at(moment)
        if "write" in moment and "result" not in moment["write"]:
            assert len(family) >= 2, family  # the fork server and a job at least
    session.finish()
    assert session.run is not None
    check_whole(session.run, torn_lines=1)
    assert records(session.run) == whole


@pytest.mark.slow
def test_sandboxed_jobs_killed_at_random_moments(tmp_path, real_run):
    """Killed from outside after random delays (a fixed seed), resumed each time."""
    task, whole = real_run
    session = Session(tmp_path / "killed", [str(task), *REAL])
    rng = random.Random(18)
    kills = 0
    while kills < 6 and session.killed_after(rng.uniform(2.0, 9.0)):
        kills += 1
    if kills == 6:
        session.finish()
    assert kills >= 1
    assert session.run is not None
    check_whole(session.run, torn_lines=kills)
    assert records(session.run) == whole
