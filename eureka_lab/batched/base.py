"""The batched-environment protocol, and its generic form over Gymnasium envs."""

from __future__ import annotations

import functools
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from eureka_lab.batched.definition import Definition
from eureka_lab.batched.mujoco_envs import DEFINITIONS
from eureka_lab.core.registry import Registry
from eureka_lab.reward.contract import batch_info

Array = TypeVar("Array")
"""numpy arrays, or the torch tensors of a tensor env (MuJoCo Warp)."""


@dataclass(frozen=True)
class Step(Generic[Array]):
    """One step of every env. Envs whose episode ended are reset automatically."""

    obs: Array
    """(n, *obs_shape): what the policy sees next (the reset observation where done)."""
    reached: Array
    """(n, *obs_shape): the observation each env reached (the terminal one where done):
    the reward's ``next_obs``."""
    reward: Array
    """(n,): the environment's own reward."""
    terminated: Array
    """(n,) bool."""
    truncated: Array
    """(n,) bool: the time limit."""
    info: dict[str, Array]
    """The reward's ``info``: visible numeric keys, (n, ...) each."""


class BatchedEnv(Protocol):
    """``num_envs`` copies of one task's environment, stepped together."""

    num_envs: int
    observation_space: Any
    """The space of one env's observation (gymnasium.spaces)."""
    action_space: Any
    """The space of one env's action."""
    tensors: bool
    """Whether it speaks torch tensors on its device (else numpy arrays)."""

    def reset(self, seed: int) -> np.ndarray:
        """Reset every env (env i with seed ``seed + i``); (n, *obs_shape)."""
        ...

    def step(self, actions: np.ndarray) -> Step: ...

    def close(self) -> None: ...


class GymBatch:
    """Any Gymnasium env in the batched form: ``num_envs`` instances stepped in turn."""

    tensors = False

    def __init__(self, make_env: Any, num_envs: int) -> None:
        self.envs = [make_env() for _ in range(num_envs)]
        self.num_envs = num_envs
        self.observation_space = self.envs[0].observation_space
        self.action_space = self.envs[0].action_space

    def reset(self, seed: int) -> np.ndarray:
        return np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])

    def step(self, actions: np.ndarray) -> Step:
        obs, reached, rewards, terms, truncs, infos = [], [], [], [], [], []
        for env, a in zip(self.envs, actions, strict=True):
            o, r, term, trunc, info = env.step(a)
            reached.append(o)
            obs.append(env.reset()[0] if term or trunc else o)
            rewards.append(r)
            terms.append(term)
            truncs.append(trunc)
            infos.append(info)
        return Step(
            obs=np.stack(obs),
            reached=np.stack(reached),
            reward=np.asarray(rewards, dtype=np.float64),
            terminated=np.asarray(terms, dtype=bool),
            truncated=np.asarray(truncs, dtype=bool),
            info=batch_info(infos),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()


def time_limit(env: Any) -> float:
    """The steps after which ``env`` (as :meth:`Task.make_env` wraps it) truncates an
    episode: its ``TimeLimit``'s, or infinity where it has none."""
    try:
        return int(env.get_wrapper_attr("_max_episode_steps"))
    except AttributeError:
        return math.inf


BATCHED: Registry[type[Definition]] = Registry(
    "batched environment", entries={d.env_id: d for d in DEFINITIONS}
)
"""Definitions (:mod:`eureka_lab.batched.definition`) by the env id tasks name: every one
of :data:`~eureka_lab.batched.mujoco_envs.DEFINITIONS`, and any registered beside them."""


def definition_for(task: Any) -> type[Definition] | None:
    """The definition that implements ``task``'s env as the task makes it; None where the
    env has none, or the task passes keyword arguments it cannot follow."""
    if task.env_id not in BATCHED:
        return None
    definition = BATCHED.get(task.env_id)
    return None if definition.unsupported(task.env_kwargs) else definition


def build_definition(task: Any, xp: Any) -> tuple[Definition, Any]:
    """``task``'s definition over ``xp``, and the env it is built from, as the task makes
    it (the model exactly as Gymnasium compiles it, the spaces, the time limit); ValueError
    where no definition implements the env as the task makes it."""
    cls = definition_for(task)
    if cls is None:
        raise ValueError(f"no batched definition implements {task.env_id} as the task makes it")
    env = task.make_env()
    return cls(env.unwrapped, {**cls.keyword_defaults(), **task.env_kwargs}, xp), env


def make_batched(task: Any, num_envs: int, threads: int = 1) -> BatchedEnv:
    """The fastest batched form of ``task``'s env: stepped in C where a definition
    implements it, else :class:`GymBatch`, which it says once per process: as a warning
    where a definition exists but the task passes keyword arguments it cannot follow, in
    the log where the env has none (every env but the MuJoCo ones)."""
    if task.env_id not in BATCHED:
        _fallback_notice(task.env_id, "")
        return GymBatch(task.make_env, num_envs)
    unsupported = BATCHED.get(task.env_id).unsupported(task.env_kwargs)
    if unsupported:
        _fallback_notice(task.env_id, "the keyword arguments " + ", ".join(unsupported))
        return GymBatch(task.make_env, num_envs)
    from eureka_lab.batched.mujoco import MujocoBatch

    return MujocoBatch(task, num_envs, threads)


@functools.cache
def _fallback_notice(env_id: str, unsupported: str) -> None:
    """Say why ``env_id`` runs on GymBatch: the ``unsupported`` part of the task, or (where
    empty) that no definition implements the env."""
    fallback = "it runs on Gymnasium, one env after another (GymBatch)"
    if unsupported:
        warnings.warn(
            f"{env_id}: its batched form does not implement {unsupported}; {fallback}",
            stacklevel=3,
        )
    else:
        logging.getLogger(__name__).info("%s has no batched definition; %s", env_id, fallback)
