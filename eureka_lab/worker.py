"""The child-process side: validate or train one candidate, write the result as JSON.

``python -m eureka_lab.worker JOB_DIR`` reads ``JOB_DIR/job.json`` and writes
``JOB_DIR/result.json`` (and ``checkpoints.json`` as training goes). Every failure of the
candidate is recorded in the result; a crash of the child itself (signal, memory) is
recorded by the parent from the exit status.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from eureka_lab.store import CHECKPOINTS, JOB, RESULT, read_json, write_json
from eureka_lab.task import Task

REWARD_FILENAME = "reward.py"


def validate(task: Task, code: str, n_envs: int = 4, steps: int = 32, seed: int = 0) -> dict:
    """Run the reward on real batched transitions: shapes, finite values, components sum."""
    from eureka_lab.sandbox import load_reward
    from eureka_lab.wrapper import RewardComputer

    started = time.monotonic()
    fn = load_reward(code)
    compute = RewardComputer(fn)
    envs = [task.make_env() for _ in range(n_envs)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    for i, env in enumerate(envs):
        env.action_space.seed(seed + i)
    names: list[str] = []
    for _ in range(steps):
        actions = np.stack([np.asarray(env.action_space.sample()) for env in envs])
        nexts, rewards, infos, resets = [], [], [], []
        for env, a in zip(envs, actions, strict=True):
            o, r, term, trunc, info = env.step(a)
            nexts.append(o)
            rewards.append(r)
            infos.append(info)
            resets.append(env.reset()[0] if term or trunc else o)
        _, comps = compute(obs, actions, np.stack(nexts), infos, np.asarray(rewards, float))
        names = sorted(comps)
        obs = np.stack(resets)
    for env in envs:
        env.close()
    return {
        "ok": True,
        "components": names,
        "transitions": n_envs * steps,
        "seconds": round(time.monotonic() - started, 3),
    }


MAX_REASON_CHARS = 2000
"""Longest failure message kept. The message is the candidate's (``raise ValueError("A" *
10**8)``) and goes into the run store, the event log and back to the model."""


def clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


def failure(stage: str, exc: BaseException, code: str | None = None) -> dict[str, Any]:
    """A failure record: one-line reason plus the traceback frames inside the candidate."""
    reason = clip(f"{type(exc).__name__}: {exc}".strip())
    lines = (code or "").splitlines()

    def source(f: traceback.FrameSummary) -> str:
        if f.line:
            return f.line.strip()
        n = f.lineno or 0
        return lines[n - 1].strip() if 0 < n <= len(lines) else ""

    frames = [
        clip(f"  {REWARD_FILENAME}, line {f.lineno}, in {f.name}: {source(f)}", 300)
        for f in traceback.extract_tb(exc.__traceback__)[-20:]
        if Path(f.filename).name == REWARD_FILENAME or f.filename.startswith("<")
    ]
    tb = "\n".join(["Traceback (inside the reward code):", *frames, reason]) if frames else reason
    return {"ok": False, "status": "failed", "stage": stage, "reason": reason, "traceback": tb}


def job_payload(
    mode: str,
    task: Task,
    code: str | None,
    spec: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``job.json`` that :func:`run_job` reads: ``mode`` is "validate" or "train" (which
    needs ``spec``, the fields of :class:`eureka_lab.trainer.TrainSpec`)."""
    payload: dict[str, Any] = {
        "mode": mode,
        "task": task.model_dump(mode="json"),
        "code": code,
        "seed": seed,
    }
    if spec is not None:
        payload["spec"] = spec
    return payload


def run_job(job_dir: Path) -> dict[str, Any]:
    job = read_json(job_dir / JOB)
    task = Task.model_validate(job["task"])
    code: str | None = job.get("code")
    if job["mode"] == "validate":
        try:
            return validate(task, code or "", seed=job.get("seed", 0))
        except Exception as e:
            return failure("validation", e, code)
    from eureka_lab.trainer import TrainSpec, train

    spec = TrainSpec(**job["spec"])
    try:
        fn = None
        if code is not None:
            from eureka_lab.sandbox import load_reward

            fn = load_reward(code)
        return train(task, fn, spec, job_dir, lambda recs: write_json(job_dir / CHECKPOINTS, recs))
    except Exception as e:
        return failure("training", e, code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_dir = Path(argv[0])
    result = run_job(job_dir)
    write_json(job_dir / RESULT, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
