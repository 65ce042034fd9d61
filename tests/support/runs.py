"""Run folders for the tests: ``written_run``, a finished run written through the run store
in milliseconds; ``Session``, a run of the ``eureka-lab`` command started, killed and
resumed through ``killpoints.py``; and the checks that a run ended whole (``check_whole``)
and as an uninterrupted one ends (``records``, ``uninterrupted``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eureka_lab import load_run

from support.killpoints import alive, descendants
from support.tasks import tiny_task_dict

KILLPOINTS = Path(__file__).resolve().parent / "killpoints.py"
"""The ``eureka-lab`` command with the test doubles registered, killed at a chosen moment."""

# The flags of a run of the sandboxed task (``write_task(real=True)``) in real jobs.
REAL = ["--llm", "offline", "--iterations", "2", "--samples", "2", "--final-seeds", "1"]
REAL += ["--workers", "2"]

MP4 = b"\x00\x00\x00\x18ftypmp42 not a real video"
"""Enough of an mp4 for the run store's type check (its magic bytes)."""


def written_run(runs_dir: Any, task_name: str = "tiny_car", component: str = "speed") -> Any:
    """A finished run written through the run store in milliseconds (no training): one
    iteration of two candidates, the first trained with checkpoints, a video and a policy."""
    import numpy as np
    from safetensors.numpy import save

    from eureka_lab.runs.records import (
        Candidate,
        Checkpoint,
        FinalRow,
        Iteration,
        RunSummary,
        TrainingResult,
    )
    from eureka_lab.runs.store import RunStore
    from eureka_lab.task.load import task_from_dict

    task = task_from_dict(tiny_task_dict(name=task_name))
    store = RunStore.create(runs_dir, "written", {"task": task.model_dump(mode="json")})
    ids = ["iter_00/cand_00", "iter_00/cand_01"]
    for i, cid in enumerate(ids):
        store.save_candidate(
            Candidate(id=cid, iteration=0, index=i, status="valid", components=[component])
        )
        store.save_reward_code(cid, f"def compute_reward(obs, action, next_obs, info):  # {i}\n")
        store.save_result(
            cid, TrainingResult(status="trained", fitness=float(i), best_step=2, steps=2)
        )
        stats = {component: {"mean": float(i), "min": 0.0, "max": 1.0}}
        store.save_checkpoints(
            cid, [Checkpoint(step=s, components=stats, fitness=float(i)) for s in (1, 2)]
        )
    store.save_video(ids[0], MP4)
    store.save_best_policy(ids[0], save({"w": np.zeros(3, dtype=np.float32)}))
    store.save_iteration(Iteration(iteration=0, candidates=ids, trained=2, best=ids[1]))
    row = FinalRow(fitness=1.0, per_seed=[1.0], reward="best")
    store.save_summary(
        RunSummary(
            task=task_name,
            best=ids[1],
            seeds=[1000],
            timesteps=2,
            final={"best": row, "human": row, "sparse": row},
        )
    )
    return store


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
