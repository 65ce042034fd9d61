"""Run folders for the tests: ``written_run``, a finished run written through the run store
in milliseconds."""

from __future__ import annotations

from typing import Any

from support.tasks import tiny_task_dict

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
