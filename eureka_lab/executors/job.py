"""The job side: what runs inside a job process, and the only format of a job.

A :class:`JobSpec` carries a job's inputs; :func:`run_job` runs it and sends everything back
through a :class:`~eureka_lab.executors.channel.Channel` (events, then one ``result`` frame):

- ``validate``: the reward on real batched transitions
  (:func:`eureka_lab.reward.validate.validate`). Runs candidate code, so the process is
  confined first.
- ``train``: the task's trainer with the reward; a ``checkpoint`` frame per checkpoint with
  its statistics and the policy's parameters (safetensors bytes). Runs candidate code.
- ``evaluate``: the evaluator (:func:`eureka_lab.evaluation.evaluator.evaluate`) on policies given as
  inputs. Never loads reward code: its result is the fitness.

Every failure of the candidate is sent as a failed result; a crash of the process itself
(signal, memory) is recorded by the parent from the exit status.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eureka_lab.core.bounds import MAX_REASON
from eureka_lab.core.text import safe_text
from eureka_lab.executors.channel import Channel
from eureka_lab.runs.records import CheckpointStats
from eureka_lab.task.model import Task
from eureka_lab.trainers import Budget, task_trainer

REWARD_FILENAME = "reward.py"
Kind = Literal["validate", "train", "evaluate"]


@dataclass(frozen=True)
class JobSpec:
    """A job's inputs. ``code`` None means the environment's own reward."""

    kind: Kind
    task: dict[str, Any]
    code: str | None = None
    seed: int = 0
    timesteps: int = 0
    checkpoints: int = 1
    episodes: int = 1
    policies: dict[int, bytes] = field(default_factory=dict)
    """``evaluate``: each checkpoint's policy (safetensors bytes), by step."""
    video: dict[str, int] | None = None
    """``evaluate``: also render the best checkpoint's rollout (VideoSpec fields)."""
    start: int = 0
    """``train``: steps already trained; ``resume`` holds the trainer's state there."""
    resume: bytes | None = None
    """``train``: a resumable trainer's state (safetensors bytes) to continue from."""
    keep_state: bool = False
    """``train``: send the trainer's state at the end (a ``state`` frame), to continue later."""
    every: int | None = None
    """``train``: steps between checkpoints (None: ``timesteps // checkpoints``)."""
    private: tuple[str, ...] = ()
    """Paths the job must not read even where they lie beneath a folder it may read (the
    run folder, with every candidate's files); the task's own private files are added
    from the task (:meth:`~eureka_lab.task.model.Task.job_private`)."""
    group: tuple[str | None, ...] = ()
    """``train``: several rewards (instead of ``code``) trained together in this one process
    by the trainer's ``train_group``, each on its own worlds. Every frame then carries its
    ``member`` (the index here), and the result is ``{"members": [one result each]}``."""

    @property
    def runs_candidate_code(self) -> bool:
        return self.kind != "evaluate"


def clip(text: object, limit: int = MAX_REASON) -> str:
    """``text`` cut to ``limit`` characters (saying how much was cut), escaped. A failure
    message is the candidate's (``raise ValueError("A" * 10**8)``) and goes into the run
    store, the event log and back to the model."""
    return safe_text(text, limit)


def failure(stage: str, exc: BaseException, code: str | None = None) -> dict[str, Any]:
    """A failure record: one-line reason plus the traceback frames inside the candidate."""
    try:
        message = str(exc)
    except Exception:  # a hostile __str__
        message = "<unprintable message>"
    reason = clip(f"{type(exc).__name__}: {message}".strip())
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


def run_job(spec: JobSpec, channel: Channel, confine: Callable[[], None]) -> None:
    """Run ``spec``, sending events and one ``result`` frame. ``confine`` is called once
    set-up is done, right before candidate code is loaded."""
    task = Task.model_validate(spec.task)
    code = spec.code

    confined: list[bool] = []

    def loader(code: str | None) -> Callable[..., Any]:
        def load(namespace: str = "numpy", device: str = "cpu") -> Any:
            """The candidate's reward, confining the process first (once);
            ``namespace="torch"`` for a trainer that calls it on tensors on ``device``."""
            if not confined:
                confine()
                confined.append(True)
            if code is None:
                return None
            from eureka_lab.reward.loader import load_reward

            return load_reward(code, namespace, device)

        return load

    load = loader(code)

    if spec.kind == "validate":
        try:
            on_torch = task_trainer(task).reward_namespace == "torch"
            from eureka_lab.reward.validate import validate

            result = validate(task, load, seed=spec.seed, on_torch=on_torch)
        except Exception as e:
            result = failure("validation", e, code)
        channel.send("result", result)
        return
    if spec.kind == "evaluate":
        from safetensors.numpy import load as load_arrays

        from eureka_lab.evaluation.evaluator import evaluate

        policies = {step: load_arrays(data) for step, data in spec.policies.items()}
        trainer = task_trainer(task)
        evaluated = evaluate(task, trainer, policies, spec.episodes)
        if spec.video is not None and evaluated.checkpoints:
            from eureka_lab.evaluation.evaluator import EVAL_SEED_BASE, choose
            from eureka_lab.evaluation.video import VideoSpec, record

            best = choose(evaluated.checkpoints)
            act = trainer.policy(task, policies[best.step])
            clip = record(task, act, EVAL_SEED_BASE, VideoSpec(**spec.video))
            channel.send("video", {"step": best.step}, clip)
        held_out = evaluated.held_out
        channel.send(
            "result",
            {
                "evaluations": [e.model_dump(mode="json") for e in evaluated.checkpoints],
                "held_out": None if held_out is None else held_out.model_dump(mode="json"),
            },
        )
        return
    from safetensors.numpy import load as load_arrays
    from safetensors.numpy import save as save_arrays

    def reporter(member: dict[str, int]) -> Callable[..., None]:
        def report(
            stats: CheckpointStats,
            arrays: dict[str, np.ndarray],
            state: dict[str, np.ndarray] | None = None,
        ) -> None:
            channel.send(
                "checkpoint", {**stats.model_dump(mode="json"), **member}, save_arrays(arrays)
            )
            if state is not None:
                channel.send("state", {"step": stats.step, **member}, save_arrays(state))

        return report

    budget = Budget(
        timesteps=spec.timesteps,
        seed=spec.seed,
        checkpoints=spec.checkpoints,
        start=spec.start,
        resume=None if spec.resume is None else load_arrays(spec.resume),
        keep_state=spec.keep_state,
        every=spec.every,
    )
    if spec.group:
        outcomes = task_trainer(task).train_group(
            task,
            [loader(c) for c in spec.group],
            budget,
            [reporter({"member": i}) for i in range(len(spec.group))],
        )
        results = [
            failure("training", o, c) if isinstance(o, BaseException) else _trained(o)
            for o, c in zip(outcomes, spec.group, strict=True)
        ]
        channel.send("result", {"members": results})
        return
    try:
        result = _trained(task_trainer(task).train(task, load, budget, reporter({})))
    except Exception as e:
        result = failure("training", e, code)
    channel.send("result", result)


def _trained(outcome: Any) -> dict[str, Any]:
    return {"ok": True, **outcome.model_dump(mode="json")}
