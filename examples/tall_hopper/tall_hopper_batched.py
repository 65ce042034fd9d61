"""``TallHopperEnv`` over a batch of simulations: the same arithmetic as its ``step``,
written over ``xp`` (numpy on the C simulator, numpy's names over torch on MuJoCo Warp).
The task names it (``batched: tall_hopper_batched:TallHopper``); jobs may read it."""

from __future__ import annotations

from typing import Any

from eureka_lab.batched.definition import Definition, uniform_noise


class TallHopper(Definition):
    needs = ("qpos", "qvel")  # the MjData fields read, as (n, ...) arrays on ``sim``
    fixed = frozenset({"xml_file", "exclude_current_positions_from_observation"})
    """Keyword arguments this definition does not follow: a task that passes one runs on
    Gymnasium, one env after another, with a warning."""

    def observe(self, sim: Any) -> Any:  # Hopper-v5's observation
        xp = self.xp
        return xp.concatenate([sim.qpos[:, 1:], xp.clip(sim.qvel, -10, 10)], axis=1)

    def reset(self, draw: Any, qpos: Any, qvel: Any) -> tuple[Any, Any]:  # reset_model
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel)

    def before(self, sim: Any) -> Any:  # what the step needs from before it: x
        return sim.qpos[:, 0]

    def outcome(self, sim: Any, before: Any, action: Any) -> tuple[Any, Any, dict]:
        x_velocity = (sim.qpos[:, 0] - before) / self.dt
        height = sim.qpos[:, 1]
        info = {"x_position": sim.qpos[:, 0], "x_velocity": x_velocity, "height": height}
        return x_velocity + 1.0, height < self.kw["min_height"], info
