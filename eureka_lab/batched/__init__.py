"""Batched environments: many simulations stepped together, arrays in and out.

:class:`BatchedEnv` is what the lean PPO trainer steps. :class:`GymBatch` gives any
Gymnasium env that form (one env after another, in Python); built-in MuJoCo tasks register
faster forms that step every simulation in C (``BATCHED``, by Gymnasium env id).
"""

from __future__ import annotations

from eureka_lab.batched.base import BATCHED, BatchedEnv, GymBatch, Step, make_batched

__all__ = ["BATCHED", "BatchedEnv", "GymBatch", "Step", "make_batched"]
