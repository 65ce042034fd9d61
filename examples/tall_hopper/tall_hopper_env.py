"""A modified Hopper: it must keep its torso above ``min_height`` metres (the episode ends
when it drops below, whatever its angle), and its own reward is forward speed plus one for
every step it stays up. Jobs that train candidates may read this module (it builds the
env); keep the task's fitness and rewards out of it."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.hopper_v5 import HopperEnv


class TallHopperEnv(HopperEnv):
    """Hopper-v5's body, observation and reset; its own end and reward."""

    def __init__(self, min_height: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_height = min_height

    def step(self, action: Any) -> tuple:
        x_before = self.data.qpos[0]
        obs, _, _, truncated, _ = super().step(action)  # Hopper's reward and end left out
        x_velocity = (self.data.qpos[0] - x_before) / self.dt
        height = self.data.qpos[1]
        info = {"x_position": self.data.qpos[0], "x_velocity": x_velocity, "height": height}
        return obs, x_velocity + 1.0, bool(height < self.min_height), truncated, info
