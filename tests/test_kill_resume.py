"""Kill -9 the orchestrator at chosen moments, resume, and check that the run ends exactly
as an uninterrupted one: every candidate once, one result and one fitness record each,
nothing that had a result trained or scored again, no temporary file left, no job alive.

The moments come from ``support/killpoints.py`` (the process kills itself with SIGKILL in the
middle of a write, between training and evaluation, while the model is asked, ...), plus
kills from outside after random delays with a fixed seed. Each test kills one run several
times in a row, resuming after each kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from eureka_lab import load_run

from support.killpoints import alive, descendants
from support.tasks import tiny_task_dict

KILLPOINTS = Path(__file__).resolve().parent / "support" / "killpoints.py"

SEEDS = """
import numpy as np


def upright(obs, action, next_obs, info):
    components = {"upright": 1.0 * next_obs[:, 0]}
    total = sum(components.values())
    return total, components


def still(obs, action, next_obs, info):
    components = {"still": 0.5 * np.abs(next_obs[:, 2])}
    total = sum(components.values())
    return total, components


def height(obs, action, next_obs, info):
    components = {"height": 1.0 * np.sin(3 * next_obs[:, 0])}
    total = sum(components.values())
    return total, components


def speed(obs, action, next_obs, info):
    components = {"speed": 10.0 * np.abs(next_obs[:, 1])}
    total = sum(components.values())
    return total, components
"""

FITNESS = """
import numpy as np


def mean_action(episode):
    return float(np.mean(episode.actions))


def furthest(episode):
    return float(np.max(episode.observations[:, 0]))
"""


def write_task(folder: Path, real: bool, trainer: str = "growing") -> Path:
    """A task that trains in well under a second. ``real``: MountainCar on the sb3 trainer
    in sandboxed jobs, scored by the furthest position reached (a fitness that differs
    from candidate to candidate); else Pendulum on the growing fake trainer (``support.doubles``),
    which runs in this process with ``--executor inline``."""
    (folder / "seeds.py").write_text(SEEDS)
    (folder / "fitness.py").write_text(FITNESS)
    if real:
        raw = tiny_task_dict(
            seed_rewards=["seeds:height", "seeds:speed"], fitness="fitness:furthest"
        )
    else:
        raw = tiny_task_dict(
            name="tiny_pendulum",
            env_id="Pendulum-v1",
            max_episode_steps=10,
            timesteps=1024,
            checkpoints=4,
            eval_episodes=1,
            fitness="fitness:mean_action",
            trainer={"name": trainer},
            seed_rewards=["seeds:upright", "seeds:still"],
        )
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Session:
    """One run, started, killed and resumed through ``support/killpoints.py``."""

    def __init__(self, folder: Path, args: list[str]) -> None:
        folder.mkdir()
        self.folder = folder
        self.args = args
        self.runs = folder / "runs"
        self.run: Path | None = None
        self.pids = folder / "pids.txt"

    def _start(self, moment: dict[str, Any], argv: list[str]) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env["KILLPOINT_PIDS"] = str(self.pids)
        self.pids.unlink(missing_ok=True)
        return subprocess.Popen(
            [sys.executable, str(KILLPOINTS), json.dumps(moment), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.folder,
            text=True,
        )

    def _argv(self) -> list[str]:
        if self.run is None:
            return ["run", *self.args, "--runs-dir", str(self.runs)]
        return ["resume", str(self.run)]

    def _found(self) -> None:
        if self.run is None:
            (self.run,) = self.runs.iterdir()

    def killed_at(self, moment: dict[str, Any]) -> list[tuple[int, int]]:
        """Run (or resume) until the process kills itself at ``moment``; the processes it
        had started then."""
        before = self._snapshot()
        proc = self._start(moment, self._argv())
        output, _ = proc.communicate(timeout=280)
        assert proc.returncode == -signal.SIGKILL, f"{moment} never came:\n{output}"
        self._found()
        family = [(int(p), int(s)) for p, s in map(str.split, self.pids.read_text().splitlines())]
        self._after_kill(family)
        self._check_nothing_redone(before)
        return family

    def killed_after(self, seconds: float) -> bool:
        """Run (or resume), killing the orchestrator from outside after ``seconds`` (if it
        has not finished by then). Whether it was killed."""
        before = self._snapshot()
        proc = self._start({}, self._argv())
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(seconds)
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stdout.read()
            self._found()
            self._check_nothing_redone(before)
            return False
        family = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        self._found()
        self._after_kill(family)
        self._check_nothing_redone(before)
        return True

    def finish(self) -> str:
        before = self._snapshot()
        proc = self._start({}, self._argv())
        output, _ = proc.communicate(timeout=280)
        assert proc.returncode == 0, output
        self._found()
        self._check_nothing_redone(before)
        return output

    def _after_kill(self, family: list[tuple[int, int]]) -> None:
        """No process the orchestrator started outlives it for long."""
        deadline = time.monotonic() + 10
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(family), f"left running after the kill: {alive(family)}"

    def _snapshot(self) -> dict[str, Any]:
        if self.run is None:
            return {"results": {}, "events": 0, "answers": {}}
        results = {}
        for path in self.run.glob("**/result.json"):
            result = json.loads(path.read_text())
            target = result["target"] or result["steps"]
            results[str(path.parent.relative_to(self.run))] = (path.stat().st_mtime_ns, target)
        return {
            "results": results,
            "answers": {p.name: p.stat().st_mtime_ns for p in (self.run / "llm").glob("*.json")},
            "events": len(read_events(self.run)),
        }

    def _check_nothing_redone(self, before: dict[str, Any]) -> None:
        """What was recorded before this process started was neither trained nor scored
        again (successive halving may train a recorded round on, to a later target, and
        mark it stopped), and no recorded answer was asked again."""
        assert self.run is not None
        new = read_events(self.run)[before["events"] :]
        went_on = set()
        for e in new:
            if e["event"] == "training_started" and e["id"] in before["results"]:
                target = before["results"][e["id"]][1]
                assert e["timesteps"] > target, f"{e['id']} trained again to {target} steps"
                went_on.add(e["id"])
        stopped = {e["id"] for e in new if e["event"] == "candidate_stopped"}
        now = self._snapshot()
        for cid, (mtime, _) in before["results"].items():
            if cid not in went_on | stopped:
                assert now["results"][cid][0] == mtime, f"{cid}: result written again"
        for name, mtime in before["answers"].items():
            assert now["answers"].get(name) == mtime, f"{name}: asked again"


def read_events(run: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run / "events.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def records(run: Path) -> dict[str, Any]:
    """What must not depend on where the run was killed: the summary, each iteration's
    record, each candidate's code, status and scores (no timings)."""
    out: dict[str, Any] = {
        "summary": json.loads((run / "summary.json").read_text()),
        "iterations": [
            json.loads(p.read_text()) for p in sorted(run.glob("iter_*/iteration.json"))
        ],
    }
    for folder in trainings(run):
        result = json.loads((folder / "result.json").read_text())
        checkpoints = json.loads(read(folder / "checkpoints.json") or "[]")
        out[str(folder.relative_to(run))] = {
            "code": read(folder / "reward.py"),
            "status": result["status"],
            "fitness": result["fitness"],
            "best_step": result["best_step"],
            "steps": result["steps"],
            "spent_steps": result["spent_steps"],
            "stopped_at": result["stopped_at"],
            "checkpoints": [(c["step"], c["fitness"]) for c in checkpoints],
        }
    return out


def read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def trainings(run: Path) -> list[Path]:
    """The folders of every candidate and final-comparison training that has a result."""
    return sorted(p.parent for p in run.glob("**/result.json"))


def check_whole(run: Path, torn_lines: int) -> None:
    """A finished run in which every candidate appears once, with one result and one
    fitness record, trained and scored once, and no temporary file is left."""
    done = load_run(run)
    assert done.finished
    events = read_events(run)
    for it in done.iterations:
        ids = [c.id for c in done.candidates if c.iteration == it.iteration]
        assert sorted(it.candidates) == sorted(ids) and len(set(ids)) == len(ids)
        ranked = [cid for group in it.ranking for cid in group]
        assert len(ranked) == len(set(ranked)) == it.trained
    valid = [
        p.parent for p in run.glob("iter_*/cand_*/candidate.json") if '"valid"' in p.read_text()
    ]
    assert valid and all((folder / "result.json").is_file() for folder in valid)
    for folder in trainings(run):
        cid = str(folder.relative_to(run))
        if json.loads((folder / "result.json").read_text())["status"] != "trained":
            continue
        steps = [c["step"] for c in json.loads((folder / "checkpoints.json").read_text())]
        assert steps == sorted(set(steps)), f"{cid}: checkpoints {steps}"
        policies = sorted(int(p.name[5:14]) for p in (folder / "policies").iterdir())
        assert policies == steps, f"{cid}: policies {policies} for checkpoints {steps}"
        assert (folder / "policy.safetensors").is_file()
        # Recorded once per target it was trained to (one, or one per round of halving).
        trained = [e for e in events if e["event"] == "candidate_trained" and e["id"] == cid]
        targets = {
            e["timesteps"] for e in events if e["event"] == "training_started" and e["id"] == cid
        }
        assert len(trained) <= len(targets), f"{cid} recorded as trained {len(trained)} times"
    leftovers = [str(p.relative_to(run)) for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    lines = (run / "events.jsonl").read_text().splitlines()
    assert sum(1 for line in lines if not _parses(line)) <= torn_lines
    shown = subprocess.run(
        [sys.executable, "-m", "eureka_lab.cli", "show", str(run)], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def uninterrupted(folder: Path, args: list[str]) -> dict[str, Any]:
    session = Session(folder, args)
    session.finish()
    assert session.run is not None
    return records(session.run)


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


REAL = ["--llm", "offline", "--iterations", "2", "--samples", "2", "--final-seeds", "1"]
REAL += ["--workers", "2"]


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
