"""Gymnasium's MuJoCo envs in batched form, every simulation stepped in C.

:class:`MujocoBatch` steps ``num_envs`` copies of the Gymnasium env's own compiled model
with :class:`mujoco.batch.Batch` (a C thread pool over live numpy state rows), around the
env's definition (:mod:`eureka_lab.batched.definition`; Gymnasium's eleven are in
:mod:`eureka_lab.batched.mujoco_envs`): its observation, resets, reward, end condition and
``info``, equal to the Gymnasium env's step by step on the same actions
(``tests/test_batched_mujoco.py``).

The fields a definition reads are the batch's bound arrays: the state rows themselves, and
derived fields copied out after every call. ``mj_step`` does not compute the
post-constraint fields (``cfrc_ext``): for a definition that reads them the batch keeps
each simulation's MjData (``persistent``), and after a step runs ``mj_rnePostConstraint``
on a copy of it, as Gymnasium runs it after ``mj_step`` (a few microseconds per
simulation). A sensor that made ``mj_step`` compute them would not do: it computes them
at the start of the last substep, and RK4 models (most of these) leave the contacts of the
substep's last stage, which Gymnasium's call reads.

Resets keep Gymnasium's random streams: env ``i`` draws from its own generator, seeded
``seed + i`` as :class:`~eureka_lab.batched.GymBatch` seeds it, so both forms start and
restart every episode in the same state; like Gymnasium's ``set_state``, a reset ends with
``mj_forward``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from eureka_lab.batched.base import Step, time_limit
from eureka_lab.batched.definition import POST_CONSTRAINT
from eureka_lab.batched.registry import build_definition, definition_for


class _EnvDraws:
    """One env's reset draws, from its own generator: Gymnasium's stream, (1, size)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return self.rng.uniform(low=low, high=high, size=size)[None]

    def standard_normal(self, size: int) -> np.ndarray:
        return self.rng.standard_normal(size)[None]

    def until(
        self, sample: Callable[[], np.ndarray], accept: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        while True:
            value = sample()
            if accept(value).all():
                return value


class MujocoBatch:
    """``num_envs`` simulations of one env, stepped by :mod:`mujoco.batch`."""

    tensors = False

    def __init__(self, task: Any, num_envs: int, threads: int = 1) -> None:
        import mujoco
        import mujoco.batch

        self.definition, env = build_definition(task, np)
        core, needs = env.unwrapped, self.definition.needs
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.max_steps = time_limit(env)
        self.frame_skip = int(core.frame_skip)
        self.model = core.model
        post = [name for name in needs if name in POST_CONSTRAINT]
        self.batch = mujoco.batch.Batch(
            core.model, nsim=num_envs, nthread=max(1, threads), persistent=bool(post)
        )
        env.close()
        self.num_envs = num_envs
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self._scratch = mujoco.MjData(core.model) if post else None
        self.post = {
            name: np.zeros((num_envs, *getattr(self._scratch, name).shape)) for name in post
        }
        self.sim = SimpleNamespace(
            **{name: self.batch.bind(name) for name in needs if name not in self.post},
            **self.post,
        )
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self.rngs: list[np.random.Generator] = []
        self.info: dict[str, np.ndarray] = {}
        """Every key of the env's ``info`` at the last step, the reward terms reward code
        does not see included (:attr:`Step.info` holds the visible ones)."""

    @staticmethod
    def supports(task: Any) -> bool:
        """Whether a definition implements the task's env with its keyword arguments."""
        return definition_for(task) is not None

    def _restart(self, ids: np.ndarray) -> None:
        """Start new episodes in simulations ``ids``, as Gymnasium's ``reset`` does."""
        import mujoco

        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        d = self.definition
        for i in ids:
            start = d.init_qpos[None].copy(), d.init_qvel[None].copy()
            qpos, qvel = d.reset(_EnvDraws(self.rngs[i]), *start)
            self.qpos[i], self.qvel[i] = qpos[0], qvel[0]
        self.batch.forward(ids)
        for array in self.post.values():
            array[ids] = 0
        self.elapsed[ids] = 0

    def _post_constraint(self, ids: np.ndarray | None = None) -> None:
        """The post-constraint fields, as ``mj_rnePostConstraint`` computes them after
        ``mj_step`` (from each simulation's MjData, copied), of simulations ``ids``."""
        import mujoco

        if not self.post:
            return
        for i in range(self.num_envs) if ids is None else ids:
            self.batch.get_data(i, self._scratch)
            mujoco.mj_rnePostConstraint(self.model, self._scratch)
            for name, array in self.post.items():
                array[i] = getattr(self._scratch, name)

    def _observe(self) -> np.ndarray:
        return np.array(self.definition.observe(self.sim), dtype=np.float64)

    def reset(self, seed: int) -> np.ndarray:
        return self.start([seed + i for i in range(self.num_envs)])

    def start(self, seeds: Sequence[int]) -> np.ndarray:
        """Start an episode in every simulation, simulation ``i`` as Gymnasium's
        ``reset(seed=seeds[i])`` starts it; the observations, (n, *obs_shape)."""
        from gymnasium.utils import seeding

        self.rngs = [seeding.np_random(int(seed))[0] for seed in seeds]
        self._restart(np.arange(self.num_envs))
        return self._observe()

    def advance(
        self, actions: np.ndarray, ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step simulations ``ids`` (None: all) with ``actions`` (one row each), restarting
        none: (the observation reached, reward, terminated, truncated), (n, ...) arrays of
        every simulation, of which the rows ``ids`` are this step's; :attr:`info` likewise.
        The state (``qpos``, ``qvel``) is the one reached until a restart."""
        rows = slice(None) if ids is None else ids
        actions = np.asarray(actions).reshape(self.num_envs if ids is None else len(ids), -1)
        before = self.definition.before(self.sim)
        before = None if before is None else np.array(before)
        self.ctrl[rows] = actions
        self.batch.step(ids=ids, nstep=self.frame_skip)
        self._post_constraint(ids)
        reached = self._observe()
        if ids is not None:  # the actions as given (their dtype), every simulation's row
            control = np.zeros((self.num_envs, actions.shape[1]), dtype=actions.dtype)
            control[ids] = actions
            actions = control
        reward, terminated, info = self.definition.outcome(self.sim, before, actions)
        # Copies, before restarts change the simulations they may view.
        reward = np.array(reward, dtype=np.float64)
        terminated = np.array(terminated, dtype=bool)
        self.info = {k: np.array(v, dtype=np.float64) for k, v in info.items()}
        self.elapsed[rows] += 1
        return reached, reward, terminated, self.elapsed >= self.max_steps

    def step(self, actions: np.ndarray) -> Step:
        from eureka_lab.reward.contract import visible_info_key

        reached, reward, terminated, truncated = self.advance(actions)
        done = np.flatnonzero(terminated | truncated)
        obs = reached
        if len(done):
            self._restart(done)
            obs = reached.copy()
            obs[done] = self._observe()[done]
        return Step(
            obs=obs,
            reached=reached,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info={k: v for k, v in self.info.items() if visible_info_key(k)},
        )

    def close(self) -> None:
        self.batch = None
