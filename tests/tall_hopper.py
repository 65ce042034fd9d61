"""A task's own MuJoCo env and its batched definition, as a task author writes them beside
the task file (``env_id: tall_hopper:TallHopperEnv``): the example of
:mod:`eureka_lab.batched.definition`."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.hopper_v5 import HopperEnv

from eureka_lab.batched.definition import Definition, uniform_noise


class TallHopperEnv(HopperEnv):
    """The Hopper, rewarded for its height, ending when it drops below 1 m."""

    def step(self, action: Any) -> tuple:
        obs, _, _, truncated, _ = super().step(action)
        height = self.data.qpos[1]
        return obs, height, bool(height < 1), truncated, {"height": height}


class TallHopper(Definition):
    env_id = "tall_hopper:TallHopperEnv"
    env_class = TallHopperEnv
    needs = ("qpos", "qvel")

    def observe(self, sim: Any) -> Any:
        xp = self.xp
        return xp.concatenate([sim.qpos[:, 1:], xp.clip(sim.qvel, -10, 10)], axis=1)

    def reset(self, draw: Any, qpos: Any, qvel: Any) -> tuple[Any, Any]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel)

    def outcome(self, sim: Any, before: Any, action: Any) -> tuple[Any, Any, dict]:
        height = sim.qpos[:, 1]
        return height, height < 1, {"height": height}
