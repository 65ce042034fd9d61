"""Batched environments: many simulations stepped together, arrays in and out.

:class:`BatchedEnv` is what the lean PPO trainer steps. :class:`GymBatch` gives any
Gymnasium env that form (one env after another, in Python). An env with a definition
(:mod:`.definition`; Gymnasium's eleven MuJoCo v5 envs are in :mod:`.mujoco_envs`,
``BATCHED`` holds them by env id) is stepped faster: every simulation in C
(:mod:`.mujoco`), or on MuJoCo Warp (:mod:`.warp`).
"""

from __future__ import annotations

from eureka_lab.batched.base import BatchedEnv, GymBatch, Step
from eureka_lab.batched.make import make_batched
from eureka_lab.batched.registry import BATCHED

__all__ = ["BATCHED", "BatchedEnv", "GymBatch", "Step", "make_batched"]
