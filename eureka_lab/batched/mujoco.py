"""Gymnasium's MuJoCo locomotion tasks in batched form: every simulation stepped in C.

:class:`MujocoBatch` steps ``num_envs`` copies of the Gymnasium env's own compiled model with
:class:`mujoco.batch.Batch` (a C thread pool over live numpy state rows). What a task adds is
a :class:`Locomotion` definition: its observation, its reset noise, its own reward, its end
condition and its ``info``, each written once over a batch of simulations and equal to the
Gymnasium env's (``tests/test_batched_mujoco.py`` compares them step by step on the same
actions). The env's keyword arguments are read from the task, with the Gymnasium class's
defaults, so a task that changes a weight or turns off termination gets the same change here.

Resets keep Gymnasium's random streams: env ``i`` draws its noise from its own generator,
seeded ``seed + i`` as :class:`~eureka_lab.batched.GymBatch` seeds it, so both forms start and
restart every episode in the same state.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from eureka_lab.batched.base import Step
from eureka_lab.task.model import Task


@dataclass(frozen=True)
class Locomotion:
    """One task's definition over a batch: arrays are (n, nq) / (n, nv) / (n, nu)."""

    env_id: str
    module: str
    """Gymnasium's module of the env class (its keyword defaults are read from there)."""
    cls: str
    qvel_noise: str = "uniform"
    """How ``reset_model`` perturbs the velocities: ``uniform`` in +-scale, or ``normal``
    with std scale (the positions are always uniform)."""

    def observe(self, kw: dict[str, Any], qpos: Any, qvel: Any, xp: Any = np) -> Any:
        raise NotImplementedError

    def noise(
        self, kw: dict[str, Any], rng: np.random.Generator, nq: int, nv: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """One env's reset noise, drawn in Gymnasium's order from its generator."""
        scale = kw["reset_noise_scale"]
        dq = rng.uniform(low=-scale, high=scale, size=nq)
        if self.qvel_noise == "normal":
            return dq, scale * rng.standard_normal(nv)
        return dq, rng.uniform(low=-scale, high=scale, size=nv)

    def outcome(
        self,
        kw: dict[str, Any],
        x_before: Any,
        qpos: Any,
        qvel: Any,
        action: Any,
        dt: float,
        init_qpos: Any,
        xp: Any = np,
    ) -> tuple[Any, Any, dict[str, Any]]:
        """(env reward, terminated, info) after a step. ``xp``: numpy, or numpy's names
        over torch (:func:`eureka_lab.reward.numpy_on_torch.make_numpy`) for tensors."""
        raise NotImplementedError

    def env_class(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.cls)

    def defaults(self) -> dict[str, Any]:
        """The env's keyword arguments and their defaults."""
        params = inspect.signature(self.env_class().__init__).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
        }


def _positions(kw: dict[str, Any], qpos: Any) -> Any:
    return qpos[:, 1:] if kw["exclude_current_positions_from_observation"] else qpos


def _progress(
    kw: dict[str, Any], x_before: Any, qpos: Any, action: Any, dt: float, xp: Any
) -> tuple[Any, Any, dict[str, Any]]:
    """The forward reward, the control cost and their ``info``, as every locomotion env
    computes them from the x position before and after the step."""
    x_after = xp.copy(qpos[:, 0])
    x_velocity = (x_after - x_before) / dt
    forward = kw["forward_reward_weight"] * x_velocity
    ctrl = kw["ctrl_cost_weight"] * xp.sum(xp.square(action), axis=1)
    info = {
        "x_position": x_after,
        "x_velocity": x_velocity,
        "reward_forward": forward,
        "reward_ctrl": -ctrl,
    }
    return forward, ctrl, info


class HalfCheetah(Locomotion):
    def observe(self, kw: dict[str, Any], qpos: Any, qvel: Any, xp: Any = np) -> Any:
        return xp.concatenate([_positions(kw, qpos), qvel], axis=1)

    def outcome(
        self,
        kw: dict[str, Any],
        x_before: Any,
        qpos: Any,
        qvel: Any,
        action: Any,
        dt: float,
        init_qpos: Any,
        xp: Any = np,
    ) -> tuple[Any, Any, dict[str, Any]]:
        forward, ctrl, info = _progress(kw, x_before, qpos, action, dt, xp)
        return forward - ctrl, xp.zeros(qpos.shape[0], dtype=xp.bool_), info


class Hopper(Locomotion):
    def observe(self, kw: dict[str, Any], qpos: Any, qvel: Any, xp: Any = np) -> Any:
        return xp.concatenate([_positions(kw, qpos), xp.clip(qvel, -10, 10)], axis=1)

    def healthy(self, kw: dict[str, Any], qpos: Any, qvel: Any, xp: Any = np) -> Any:
        z, angle = qpos[:, 1], qpos[:, 2]
        state = xp.concatenate([qpos, qvel], axis=1)[:, 2:]
        lo_s, hi_s = kw["healthy_state_range"]
        lo_z, hi_z = kw["healthy_z_range"]
        lo_a, hi_a = kw["healthy_angle_range"]
        return (
            xp.all((lo_s < state) & (state < hi_s), axis=1)
            & (lo_z < z)
            & (z < hi_z)
            & (lo_a < angle)
            & (angle < hi_a)
        )

    def outcome(
        self,
        kw: dict[str, Any],
        x_before: Any,
        qpos: Any,
        qvel: Any,
        action: Any,
        dt: float,
        init_qpos: Any,
        xp: Any = np,
    ) -> tuple[Any, Any, dict[str, Any]]:
        forward, ctrl, info = _progress(kw, x_before, qpos, action, dt, xp)
        healthy = self.healthy(kw, qpos, qvel, xp)
        survive = healthy * float(kw["healthy_reward"])
        terminated = ~healthy if kw["terminate_when_unhealthy"] else xp.zeros_like(healthy)
        info["z_distance_from_origin"] = qpos[:, 1] - init_qpos[1]
        info["reward_survive"] = survive
        return forward + survive - ctrl, terminated, info


LOCOMOTION: dict[str, Locomotion] = {
    d.env_id: d
    for d in (
        HalfCheetah(
            "HalfCheetah-v5", "gymnasium.envs.mujoco.half_cheetah_v5", "HalfCheetahEnv", "normal"
        ),
        Hopper("Hopper-v5", "gymnasium.envs.mujoco.hopper_v5", "HopperEnv"),
    )
}
"""The tasks with a batched form, by Gymnasium env id."""


class MujocoBatch:
    """``num_envs`` simulations of one locomotion task, stepped by :mod:`mujoco.batch`."""

    def __init__(self, task: Task, num_envs: int, threads: int = 1) -> None:
        import mujoco.batch

        self.definition = LOCOMOTION[task.env_id]
        self.kw = {**self.definition.defaults(), **task.env_kwargs}
        env = task.make_env()  # the model exactly as Gymnasium compiles it, and the spaces
        core = env.unwrapped
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.max_steps = int(env.spec.max_episode_steps) if env.spec else 1000
        self.frame_skip = int(core.frame_skip)
        self.dt = float(core.dt)
        self.init_qpos = np.array(core.init_qpos, dtype=np.float64)
        self.init_qvel = np.array(core.init_qvel, dtype=np.float64)
        self.batch = mujoco.batch.Batch(core.model, nsim=num_envs, nthread=max(1, threads))
        env.close()
        self.num_envs = num_envs
        self.nq, self.nv = len(self.init_qpos), len(self.init_qvel)
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self.rngs: list[np.random.Generator] = []

    @staticmethod
    def supports(task: Task) -> bool:
        """Whether every keyword argument the task passes is one this form implements."""
        definition = LOCOMOTION.get(task.env_id)
        if definition is None:
            return False
        known = set(definition.defaults()) - {"xml_file"}
        return set(task.env_kwargs) <= known

    def _restart(self, ids: np.ndarray) -> None:
        """Start new episodes in simulations ``ids``, as Gymnasium's ``reset_model`` does."""
        import mujoco

        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        for i in ids:
            dq, dv = self.definition.noise(self.kw, self.rngs[i], self.nq, self.nv)
            self.qpos[i] = self.init_qpos + dq
            self.qvel[i] = self.init_qvel + dv
        self.elapsed[ids] = 0

    def _observe(self) -> np.ndarray:
        return self.definition.observe(self.kw, self.qpos, self.qvel)

    def reset(self, seed: int) -> np.ndarray:
        from gymnasium.utils import seeding

        self.rngs = [seeding.np_random(seed + i)[0] for i in range(self.num_envs)]
        self._restart(np.arange(self.num_envs))
        return self._observe()

    def step(self, actions: np.ndarray) -> Step:
        actions = np.asarray(actions).reshape(self.num_envs, -1)
        x_before = self.qpos[:, 0].copy()
        self.ctrl[:] = actions
        self.batch.step(nstep=self.frame_skip)
        reached = self._observe()
        reward, terminated, info = self.definition.outcome(
            self.kw, x_before, self.qpos, self.qvel, actions, self.dt, self.init_qpos
        )
        self.elapsed += 1
        truncated = self.elapsed >= self.max_steps
        done = np.flatnonzero(terminated | truncated)
        obs = reached
        if len(done):
            self._restart(done)
            obs = reached.copy()
            obs[done] = self._observe()[done]
        return Step(
            obs=obs,
            reached=reached,
            reward=np.asarray(reward, dtype=np.float64),
            terminated=np.asarray(terminated, dtype=bool),
            truncated=truncated,
            info={k: np.asarray(v, dtype=np.float64) for k, v in info.items() if _visible(k)},
        )

    def close(self) -> None:
        self.batch = None


def _visible(key: str) -> bool:
    from eureka_lab.reward.contract import visible_info_key

    return visible_info_key(key)
