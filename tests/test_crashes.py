"""Fault injection: candidates whose child crashes, is killed, runs out of memory, returns
NaN, raises or hangs are recorded as failed with a reason naming the cause, the executor
goes on with the next job, and the orchestrator (this test process) survives.

Faults come from ``support.faulty_envs.FaultyEnv``, a tiny env that injects one fault at a
chosen step; the child imports it through PYTHONPATH. Hang and memory faults
only ever run in a sandboxed child.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from eureka_lab.executors.base import Job
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.task.load import task_from_dict
from eureka_lab.task.model import Task

from support.tasks import tiny_task_dict

TESTS_DIR = Path(__file__).resolve().parent

REWARD = """import numpy as np


def compute_reward(obs, action, next_obs, info):
    r = next_obs[:, 0] + 0.1 * action
    return r, {"progress": r}
"""

# Returns NaN (or inf) once it has been called more than AFTER times: past the 32 calls of
# validation, so the failure comes at training time.
NON_FINITE = """import numpy as np

CALLS = {"n": 0}


def compute_reward(obs, action, next_obs, info):
    CALLS["n"] = CALLS["n"] + 1
    r = next_obs[:, 0] * 1.0
    if CALLS["n"] > AFTER:
        r = r * BAD
    return r, {"progress": r}
"""


def faulty_task(fault: str = "none", at_step: int = 10) -> Task:
    return task_from_dict(
        tiny_task_dict(
            name=f"faulty_{fault}",
            env_id="support.faulty_envs:FaultyEnv",
            env_kwargs={"fault": fault, "at_step": at_step},
            description="Press the second button.",
            eval_episodes=1,
        )
    )


def job(key: str, task: Task, kind: str, code: str = REWARD, timeout=120.0) -> Job:
    spec = JobSpec(kind, task.model_dump(mode="json"), code, timesteps=512, checkpoints=2)
    return Job(key, spec, timeout)


def _importable(monkeypatch) -> None:
    """Put this folder on the children's PYTHONPATH, so they can import support.faulty_envs (a
    child forked from the executor's server also inherits this process's sys.path)."""
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)


@pytest.fixture(autouse=True)
def child_can_import_faulty_envs(monkeypatch):
    _importable(monkeypatch)


@pytest.fixture(scope="module", autouse=True)
def warm_executor() -> None:
    """One healthy job first: a job's wall clock starts before the executor's fork server
    has finished its imports, which would otherwise eat into the hang's short timeout."""
    with pytest.MonkeyPatch.context() as mp:
        _importable(mp)
        out = LocalExecutor(1).run([job("warm", faulty_task(), "validate")])["warm"]
        assert out.result["ok"], out


# Fault -> words the recorded reason must contain.
CAUSES = {
    "segfault": "segmentation fault",
    "sigkill": "killed",
    "memory": "MemoryError",
    "raise": "RuntimeError: injected fault at step",
    "hang": "timed out",
}


def _reason(out) -> str:
    """Why a job failed: the reason it sent, or the parent's from its exit."""
    return out.result["reason"] if out.result is not None else out.reason


def test_faults_during_validation_are_recorded_and_the_executor_goes_on():
    """Each fault in its own child, two at a time, a healthy job queued last."""
    jobs = [
        job(fault, faulty_task(fault, at_step=5), "validate", timeout=5 if fault == "hang" else 60)
        for fault in CAUSES
    ]
    jobs.append(job("healthy", faulty_task(), "validate"))
    started = time.monotonic()
    results = LocalExecutor(2).run(jobs)
    assert sorted(results) == sorted(j.key for j in jobs)  # every job reported
    assert results["healthy"].result["ok"] is True, results["healthy"]
    for fault, cause in CAUSES.items():
        out = results[fault]
        assert out.result is None or out.result["ok"] is False, (fault, out)
        assert cause in _reason(out), (fault, out)
    for fault in ("raise", "memory"):
        assert results[fault].result["stage"] == "validation", results[fault]
    assert results["raise"].result["reason"] == "RuntimeError: injected fault at step 5"
    assert "SIGSEGV" in results["segfault"].reason
    assert "SIGKILL" in results["sigkill"].reason
    assert time.monotonic() - started < 90


def test_faults_during_training_are_recorded_and_the_executor_goes_on():
    """Train mode: each fault deep in training, a reward that turns NaN and one that turns
    inf after validation's calls; a healthy training queued last."""
    nan = NON_FINITE.replace("AFTER", "40").replace("BAD", "np.nan")
    inf = NON_FINITE.replace("AFTER", "60").replace("BAD", "np.inf")
    jobs = [
        job(fault, faulty_task(fault, at_step=100), "train", timeout=5 if fault == "hang" else 120)
        for fault in CAUSES
    ]
    jobs += [
        job("nan", faulty_task(), "train", code=nan),
        job("inf", faulty_task(), "train", code=inf),
        job("healthy", faulty_task(), "train"),
    ]
    events = []
    results = LocalExecutor(2).run(jobs, on_event=events.append)
    assert sorted(results) == sorted(j.key for j in jobs)  # every job reported
    assert results["healthy"].result["ok"] is True, results["healthy"]
    assert results["healthy"].result["steps"] == 512
    assert [e.data["step"] for e in events if e.key == "healthy"] == [256, 512]
    for fault, cause in CAUSES.items():
        out = results[fault]
        assert out.result is None or out.result["ok"] is False, (fault, out)
        assert cause in _reason(out), (fault, out)
    for fault in ("raise", "memory"):  # the job itself caught these and said so
        assert results[fault].result["stage"] == "training", results[fault]
    assert results["raise"].result["reason"] == "RuntimeError: injected fault at step 100"
    assert "SIGSEGV" in results["segfault"].reason
    assert "SIGKILL" in results["sigkill"].reason
    for key in ("nan", "inf"):
        res = results[key].result
        assert res["ok"] is False and res["stage"] == "training", res
        assert "non-finite" in res["reason"], res["reason"]
    for key in ("segfault", "sigkill", "hang"):
        assert results[key].result is None


def test_the_nan_reward_passes_validation():
    """The NaN reward above fails only in training: validation's 32 calls stay finite."""
    from eureka_lab.reward.loader import load_reward
    from eureka_lab.reward.validate import validate

    code = NON_FINITE.replace("AFTER", "40").replace("BAD", "np.nan")
    assert validate(faulty_task(), lambda: load_reward(code))["ok"] is True
