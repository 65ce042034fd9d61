"""A tiny environment that injects one fault at a chosen step, for the crash tests.

Referenced as ``env_id: support.faulty_envs:FaultyEnv`` with ``env_kwargs`` such as
``{"fault": "segfault", "at_step": 20}``. The step count is per env instance and survives
resets, so ``at_step`` larger than an episode still fires. Faults:

``segfault``  read address 0 (``ctypes.string_at(0)``): the process dies with SIGSEGV
``sigkill``   SIGKILL itself, as the kernel's OOM killer would
``raise``     raise ``RuntimeError("injected fault at step N")``
``hang``      sleep forever (only a wall-clock limit ends it)
``memory``    reserve address space 256 MiB at a time until allocation fails; the pages are
              never touched, so only an address-space limit (RLIMIT_AS) stops it cheaply
``none``      no fault (a healthy env)

The ``hang`` and ``memory`` faults must only ever run in a sandboxed child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import gymnasium as gym
import numpy as np

FAULTS = ("none", "segfault", "sigkill", "raise", "hang", "memory")


class FaultyEnv(gym.Env):
    """Observation: (progress, noise); two actions; reward 1 for action 1."""

    def __init__(self, fault: str = "none", at_step: int = 10) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        self.fault = fault
        self.at_step = at_step
        self.steps = 0
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        noise = self.np_random.uniform(-1.0, 1.0)
        return np.array([min(self.steps, 1000) / 1000.0, noise], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        if self.steps == self.at_step:
            self._inject()
        return self._obs(), float(action), False, False, {"progress": float(self.steps)}

    def _inject(self) -> None:
        if self.fault == "segfault":
            ctypes.string_at(0)
        elif self.fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.fault == "raise":
            raise RuntimeError(f"injected fault at step {self.steps}")
        elif self.fault == "hang":
            while True:
                time.sleep(1)
        elif self.fault == "memory":
            hog = []
            while True:
                hog.append(np.empty(256 * 1024**2, dtype=np.uint8))
