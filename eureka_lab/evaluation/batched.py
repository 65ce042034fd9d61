"""Evaluation episodes on the batched form of a task's env: every episode of a round is a
row of one :class:`~eureka_lab.batched.mujoco.MujocoBatch` (the C simulator, float64),
stepped together, each policy acting on its own unfinished rows in one call as
:func:`~eureka_lab.evaluation.evaluator.rollout` calls it. The :class:`Episode` of a row
equals the one Gymnasium's rollout gives for the same policy and seed
(``tests/test_evaluation_batched.py``). No reward code here either: the evaluator's."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from eureka_lab.task.episode import Episode
from eureka_lab.task.model import Task

Act = Callable[[np.ndarray], np.ndarray]


def has_batched_form(task: Task) -> bool:
    """Whether a definition implements ``task``'s env as the task makes it (in C)."""
    from eureka_lab.batched.registry import definition_for

    return definition_for(task) is not None


class BatchedRollout:
    """Rounds of evaluation episodes of ``task``, as rows of one batch per round; the env's
    spaces, layout (model, control step) and time limit for the behaviour summary."""

    def __init__(self, task: Task) -> None:
        from eureka_lab.batched.mujoco import MujocoBatch

        self.task = task
        probe = MujocoBatch(task, 1)
        self.model = probe.model
        self.dt = probe.definition.dt
        self.action_space = probe.action_space
        self.limit = None if math.isinf(probe.max_steps) else int(probe.max_steps)
        probe.close()

    def episodes(self, acts: Sequence[Act], seeds: Sequence[int]) -> list[list[Episode]]:
        """One episode per policy and seed: policy ``k``'s on rows ``k * m`` to
        ``(k + 1) * m`` (``m = len(seeds)``), row ``k * m + i`` seeded ``seeds[i]``."""
        from eureka_lab.batched.mujoco import MujocoBatch

        m = len(seeds)
        n = m * len(acts)
        batch = MujocoBatch(self.task, n)
        try:
            return self._run(batch, acts, m, batch.start([int(s) for s in seeds] * len(acts)))
        finally:
            batch.close()

    @staticmethod
    def _run(batch: Any, acts: Sequence[Act], m: int, obs: np.ndarray) -> list[list[Episode]]:
        n = batch.num_envs
        observations, actions, rewards, infos = [obs], [], [], []
        qpos, qvel = [batch.qpos.copy()], [batch.qvel.copy()]
        live = np.ones(n, dtype=bool)
        lengths = np.zeros(n, dtype=np.int64)
        ends = np.zeros((n, 2), dtype=bool)
        current = obs
        while live.any():
            ids = np.flatnonzero(live)
            chosen = []
            for k, act in enumerate(acts):
                rows = ids[(ids >= k * m) & (ids < (k + 1) * m)]
                if len(rows):
                    chosen.append(act(current[rows]))
            step_actions = np.concatenate(chosen)
            reached, reward, terminated, truncated = batch.advance(step_actions, ids)
            full = np.zeros((n, *step_actions.shape[1:]), dtype=step_actions.dtype)
            full[ids] = step_actions
            observations.append(reached)
            actions.append(full)
            rewards.append(reward)
            infos.append(batch.info)
            qpos.append(batch.qpos.copy())
            qvel.append(batch.qvel.copy())
            lengths[ids] += 1
            done = ids[terminated[ids] | truncated[ids]]
            ends[done, 0], ends[done, 1] = terminated[done], truncated[done]
            live[done] = False
            current = reached
        obs_all, act_all, rew_all = np.stack(observations), np.stack(actions), np.stack(rewards)
        qpos_all, qvel_all = np.stack(qpos), np.stack(qvel)
        info_all = {k: np.stack([info[k] for info in infos]) for k in sorted(infos[0])}
        out: list[list[Episode]] = []
        for k in range(len(acts)):
            group = []
            for row in range(k * m, (k + 1) * m):
                t = int(lengths[row])
                group.append(
                    Episode(
                        observations=obs_all[: t + 1, row],
                        actions=act_all[:t, row],
                        rewards=rew_all[:t, row],
                        infos={key: v[:t, row] for key, v in info_all.items()},
                        qpos=qpos_all[: t + 1, row],
                        qvel=qvel_all[: t + 1, row],
                        terminated=bool(ends[row, 0]),
                        truncated=bool(ends[row, 1]),
                    )
                )
            out.append(group)
        return out
