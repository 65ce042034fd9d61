"""Gymnasium's eleven MuJoCo v5 envs as batched definitions (:mod:`.definition`).

Each follows its ``gymnasium/envs/mujoco/*_v5.py`` line for line, keyword arguments
included: observation options, reward weights, reset noise, health ranges. Gymnasium's
order of operations is kept, so that the C simulator equals it to the last bits
(``tests/test_batched_mujoco.py`` compares them step by step). :data:`DEFINITIONS` lists
them; the registry of batched forms is built from it.
"""

from __future__ import annotations

from typing import Any

from eureka_lab.batched.definition import Array, Definition, Draw, uniform_noise

_MUJOCO = "gymnasium.envs.mujoco."


def _flat(x: Array) -> Array:
    """(n, a, b) as (n, a * b), as Gymnasium's ``.flatten()`` of one env's field."""
    return x.reshape(x.shape[0], -1)


def _positions(kw: dict[str, Any], qpos: Array, skipped: int) -> Array:
    """The observed positions: without the first ``skipped`` (the position in the world)
    where ``exclude_current_positions_from_observation``."""
    return qpos[:, skipped:] if kw["exclude_current_positions_from_observation"] else qpos


class Locomotion(Definition):
    """A robot rewarded for moving forward: the reward terms and ``info`` keys its
    Gymnasium env shares with the others."""

    skipped: int = 1
    """1: the env moves along x; 2: in the x-y plane. Its observation may leave out
    these coordinates."""

    def positions(self, sim: Any) -> Array:
        return _positions(self.kw, sim.qpos, self.skipped)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel)

    def before(self, sim: Any) -> Array:
        """The x position ((n,)), or x and y ((n, 2)) where the env moves in a plane."""
        return sim.qpos[:, 0] if self.skipped == 1 else sim.qpos[:, 0:2]

    def progress(
        self, position: Array, before: Array, control: Array
    ) -> tuple[Array, Array, dict[str, Array]]:
        """The forward reward and the control cost, from the position (as :meth:`before`)
        after and before the step; their ``info``."""
        xp = self.xp
        velocity = (position - before) / self.dt
        x_velocity = velocity if velocity.ndim == 1 else velocity[:, 0]
        forward = self.kw["forward_reward_weight"] * x_velocity
        ctrl = self.kw["ctrl_cost_weight"] * xp.sum(xp.square(control), axis=1)
        info = {"x_velocity": x_velocity, "reward_forward": forward, "reward_ctrl": -ctrl}
        if velocity.ndim == 2:
            info["y_velocity"] = velocity[:, 1]
        return forward, ctrl, info

    def healthy(self, sim: Any) -> Array:
        raise NotImplementedError

    def survival(self, sim: Any, info: dict[str, Array]) -> tuple[Array, Array]:
        """(the healthy reward, terminated), ``reward_survive`` added to ``info``."""
        healthy = self.healthy(sim)
        survive = healthy * self.kw["healthy_reward"]
        info["reward_survive"] = survive
        if self.kw["terminate_when_unhealthy"]:
            return survive, ~healthy
        return survive, self.xp.zeros_like(healthy)

    def xy_info(self, sim: Any) -> dict[str, Array]:
        """Where an env moving in a plane is, as its ``info`` says."""
        xy = sim.qpos[:, 0:2]
        return {
            "x_position": sim.qpos[:, 0],
            "y_position": sim.qpos[:, 1],
            "distance_from_origin": self.xp.linalg.norm(xy, ord=2, axis=1),
        }


class HalfCheetah(Locomotion):
    env_id = "HalfCheetah-v5"
    env_class = _MUJOCO + "half_cheetah_v5:HalfCheetahEnv"

    def observe(self, sim: Any) -> Array:
        return self.xp.concatenate([self.positions(sim), sim.qvel], axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel, normal_velocity=True)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        forward, ctrl, info = self.progress(sim.qpos[:, 0], before, action)
        info["x_position"] = sim.qpos[:, 0]
        return forward - ctrl, self.xp.zeros(action.shape[0], dtype=self.xp.bool_), info


class Hopper(Locomotion):
    """Hopper, and Walker2d, which differs only in what it calls healthy."""

    env_id = "Hopper-v5"
    env_class = _MUJOCO + "hopper_v5:HopperEnv"

    def observe(self, sim: Any) -> Array:
        xp = self.xp
        return xp.concatenate([self.positions(sim), xp.clip(sim.qvel, -10, 10)], axis=1)

    def healthy(self, sim: Any) -> Array:
        xp = self.xp
        z, angle = sim.qpos[:, 1], sim.qpos[:, 2]
        state = xp.concatenate([sim.qpos, sim.qvel], axis=1)[:, 2:]
        lo_s, hi_s = self.kw["healthy_state_range"]
        return xp.all((lo_s < state) & (state < hi_s), axis=1) & self.upright(z, angle)

    def upright(self, z: Array, angle: Array) -> Array:
        lo_z, hi_z = self.kw["healthy_z_range"]
        lo_a, hi_a = self.kw["healthy_angle_range"]
        return (lo_z < z) & (z < hi_z) & (lo_a < angle) & (angle < hi_a)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        forward, ctrl, info = self.progress(sim.qpos[:, 0], before, action)
        survive, terminated = self.survival(sim, info)
        info["x_position"] = sim.qpos[:, 0]
        info["z_distance_from_origin"] = sim.qpos[:, 1] - self.init_qpos[1]
        return forward + survive - ctrl, terminated, info


class Walker2d(Hopper):
    env_id = "Walker2d-v5"
    env_class = _MUJOCO + "walker2d_v5:Walker2dEnv"

    def healthy(self, sim: Any) -> Array:
        return self.upright(sim.qpos[:, 1], sim.qpos[:, 2])


class Swimmer(Locomotion):
    env_id = "Swimmer-v5"
    env_class = _MUJOCO + "swimmer_v5:SwimmerEnv"
    skipped = 2

    def observe(self, sim: Any) -> Array:
        return self.xp.concatenate([self.positions(sim), sim.qvel], axis=1)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        forward, ctrl, info = self.progress(sim.qpos[:, 0:2], before, action)
        info.update(self.xy_info(sim))
        return forward - ctrl, self.xp.zeros(action.shape[0], dtype=self.xp.bool_), info


class Ant(Locomotion):
    """Moves by its main body's frame; its contact forces, clipped, are observed and cost."""

    env_id = "Ant-v5"
    env_class = _MUJOCO + "ant_v5:AntEnv"
    needs = ("qpos", "qvel", "xpos", "cfrc_ext")
    skipped = 2

    def __init__(self, env: Any, kw: dict[str, Any], xp: Any) -> None:
        super().__init__(env, kw, xp)
        self.main_body = env.model.body(kw["main_body"]).id

    def contact_forces(self, sim: Any) -> Array:
        low, high = self.kw["contact_force_range"]
        return self.xp.clip(sim.cfrc_ext, low, high)

    def observe(self, sim: Any) -> Array:
        parts = [self.positions(sim), sim.qvel]
        if self.kw["include_cfrc_ext_in_observation"]:
            parts.append(_flat(self.contact_forces(sim)[:, 1:]))
        return self.xp.concatenate(parts, axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel, normal_velocity=True)

    def before(self, sim: Any) -> Array:
        return sim.xpos[:, self.main_body, :2]

    def healthy(self, sim: Any) -> Array:
        xp = self.xp
        state = xp.concatenate([sim.qpos, sim.qvel], axis=1)
        low, high = self.kw["healthy_z_range"]
        return xp.all(xp.isfinite(state), axis=1) & (low <= state[:, 2]) & (state[:, 2] <= high)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        xp = self.xp
        forward, ctrl, info = self.progress(sim.xpos[:, self.main_body, :2], before, action)
        survive, terminated = self.survival(sim, info)
        forces = _flat(self.contact_forces(sim))
        contact = self.kw["contact_cost_weight"] * xp.sum(xp.square(forces), axis=1)
        info["reward_contact"] = -contact
        info.update(self.xy_info(sim))
        return forward + survive - (ctrl + contact), terminated, info


class _HumanoidBody(Definition):
    """The humanoid's observation, which Humanoid and HumanoidStandup share: positions,
    velocities, then as their keyword arguments choose, the bodies' inertia and velocity
    (``cinert``, ``cvel``), the actuated joints' actuator forces and the bodies' external
    (contact) forces, each without the world body."""

    needs = (
        "qpos",
        "qvel",
        "ctrl",
        "xipos",
        "cinert",
        "cvel",
        "qfrc_actuator",
        "cfrc_ext",
        "ten_length",
        "ten_velocity",
    )

    def observe(self, sim: Any) -> Array:
        kw = self.kw
        parts = [_positions(kw, sim.qpos, 2), sim.qvel]
        if kw["include_cinert_in_observation"]:
            parts.append(_flat(sim.cinert[:, 1:]))
        if kw["include_cvel_in_observation"]:
            parts.append(_flat(sim.cvel[:, 1:]))
        if kw["include_qfrc_actuator_in_observation"]:
            parts.append(sim.qfrc_actuator[:, 6:])
        if kw["include_cfrc_ext_in_observation"]:
            parts.append(_flat(sim.cfrc_ext[:, 1:]))
        return self.xp.concatenate(parts, axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel)

    def contact_cost(self, sim: Any, name: str) -> Array:
        """The cost of every body's external forces, weighted by ``{name}_weight`` and
        clipped to ``{name}_range``."""
        xp = self.xp
        contact = self.kw[f"{name}_weight"] * xp.sum(xp.square(_flat(sim.cfrc_ext)), axis=1)
        low, high = self.kw[f"{name}_range"]
        return xp.clip(contact, low, high)

    def tendons(self, sim: Any) -> dict[str, Array]:
        return {"tendon_length": sim.ten_length, "tendon_velocity": sim.ten_velocity}


class Humanoid(_HumanoidBody, Locomotion):
    """Moves by its centre of mass (the bodies' ``xipos`` weighted by mass)."""

    env_id = "Humanoid-v5"
    env_class = _MUJOCO + "humanoid_v5:HumanoidEnv"
    skipped = 2

    def __init__(self, env: Any, kw: dict[str, Any], xp: Any) -> None:
        super().__init__(env, kw, xp)
        self.mass = xp.asarray(env.model.body_mass)
        self.total_mass = float(env.model.body_mass.sum())

    def before(self, sim: Any) -> Array:
        return (self.xp.einsum("b,nbj->nj", self.mass, sim.xipos) / self.total_mass)[:, 0:2]

    def healthy(self, sim: Any) -> Array:
        low, high = self.kw["healthy_z_range"]
        return (low < sim.qpos[:, 2]) & (sim.qpos[:, 2] < high)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        forward, ctrl, info = self.progress(self.before(sim), before, sim.ctrl)
        survive, terminated = self.survival(sim, info)
        contact = self.contact_cost(sim, "contact_cost")
        info["reward_contact"] = -contact
        info.update(self.xy_info(sim))
        info.update(self.tendons(sim))
        return forward + survive - (ctrl + contact), terminated, info


class HumanoidStandup(_HumanoidBody):
    """Rewarded for height: the torso's z over the model's time step (not the env's)."""

    env_id = "HumanoidStandup-v5"
    env_class = _MUJOCO + "humanoidstandup_v5:HumanoidStandupEnv"

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        xp = self.xp
        uph = (sim.qpos[:, 2] - 0) / self.model.opt.timestep
        ctrl = self.kw["ctrl_cost_weight"] * xp.sum(xp.square(sim.ctrl), axis=1)
        impact = self.contact_cost(sim, "impact_cost")
        info = {
            "x_position": sim.qpos[:, 0],
            "y_position": sim.qpos[:, 1],
            "z_distance_from_origin": sim.qpos[:, 2] - self.init_qpos[2],
            **self.tendons(sim),
            "reward_linup": uph,
            "reward_quadctrl": -ctrl,
            "reward_impact": -impact,
        }
        terminated = xp.zeros(action.shape[0], dtype=xp.bool_)
        return uph - ctrl - impact + 1, terminated, info


class InvertedPendulum(Definition):
    env_id = "InvertedPendulum-v5"
    env_class = _MUJOCO + "inverted_pendulum_v5:InvertedPendulumEnv"

    def observe(self, sim: Any) -> Array:
        return self.xp.concatenate([sim.qpos, sim.qvel], axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        xp = self.xp
        obs = self.observe(sim)
        terminated = ~xp.all(xp.isfinite(obs), axis=1) | (xp.abs(obs[:, 1]) > 0.2)
        reward = xp.where(terminated, 0.0, 1.0)
        return reward, terminated, {"reward_survive": reward}


class InvertedDoublePendulum(Definition):
    """Ends when the tip (site 0) falls to 1 m; its first observation term is the cart's
    constraint force."""

    env_id = "InvertedDoublePendulum-v5"
    env_class = _MUJOCO + "inverted_double_pendulum_v5:InvertedDoublePendulumEnv"
    needs = ("qpos", "qvel", "site_xpos", "qfrc_constraint")

    def observe(self, sim: Any) -> Array:
        xp = self.xp
        angles = sim.qpos[:, 1:]
        return xp.concatenate(
            [
                sim.qpos[:, :1],
                xp.sin(angles),
                xp.cos(angles),
                xp.clip(sim.qvel, -10, 10),
                xp.clip(sim.qfrc_constraint, -10, 10)[:, :1],
            ],
            axis=1,
        )

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        return uniform_noise(draw, self.kw["reset_noise_scale"], qpos, qvel, normal_velocity=True)

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        x, y = sim.site_xpos[:, 0, 0], sim.site_xpos[:, 0, 2]
        terminated = y <= 1
        v1, v2 = sim.qvel[:, 1], sim.qvel[:, 2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive_bonus = self.xp.where(terminated, 0.0, float(self.kw["healthy_reward"]))
        info = {
            "reward_survive": alive_bonus,
            "distance_penalty": -dist_penalty,
            "velocity_penalty": -vel_penalty,
        }
        return alive_bonus - dist_penalty - vel_penalty, terminated, info


class _Arm(Definition):
    """An arm reaching for a target: body positions (Gymnasium's ``get_body_com``, the
    bodies' frames) by name."""

    needs = ("qpos", "qvel", "xpos")
    bodies: tuple[str, ...] = ()

    def __init__(self, env: Any, kw: dict[str, Any], xp: Any) -> None:
        super().__init__(env, kw, xp)
        self.ids = {name: env.model.body(name).id for name in self.bodies}

    def body(self, sim: Any, name: str) -> Array:
        return sim.xpos[:, self.ids[name]]

    def distance(self, sim: Any, a: str, b: str) -> Array:
        return self.xp.linalg.norm(self.body(sim, a) - self.body(sim, b), axis=1)

    def control_reward(self, action: Array) -> Array:
        xp = self.xp
        return -xp.sum(xp.square(action), axis=1) * self.kw["reward_control_weight"]


class Reacher(_Arm):
    """A two-joint arm; its target (the last two joints) is drawn in a disc of radius 0.2."""

    env_id = "Reacher-v5"
    env_class = _MUJOCO + "reacher_v5:ReacherEnv"
    bodies = ("fingertip", "target")

    def observe(self, sim: Any) -> Array:
        xp = self.xp
        theta = sim.qpos[:, :2]
        vec = self.body(sim, "fingertip") - self.body(sim, "target")
        parts = [xp.cos(theta), xp.sin(theta), sim.qpos[:, 2:], sim.qvel[:, :2], vec[:, :2]]
        return xp.concatenate(parts, axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        xp = self.xp
        qpos = draw.uniform(-0.1, 0.1, qpos.shape[1]) + qpos
        goal = draw.until(
            lambda: draw.uniform(-0.2, 0.2, 2), lambda g: xp.linalg.norm(g, axis=1) < 0.2
        )
        qpos[:, -2:] = goal
        qvel = qvel + draw.uniform(-0.005, 0.005, qvel.shape[1])
        qvel[:, -2:] = 0
        return qpos, qvel

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        dist = -self.distance(sim, "fingertip", "target") * self.kw["reward_dist_weight"]
        ctrl = self.control_reward(action)
        terminated = self.xp.zeros(action.shape[0], dtype=self.xp.bool_)
        return dist + ctrl, terminated, {"reward_dist": dist, "reward_ctrl": ctrl}


class Pusher(_Arm):
    """A seven-joint arm pushing an object (the next two joints, drawn in a box at least
    0.17 from the goal) to the goal (the last two, at the origin)."""

    env_id = "Pusher-v5"
    env_class = _MUJOCO + "pusher_v5:PusherEnv"
    bodies = ("tips_arm", "object", "goal")

    def observe(self, sim: Any) -> Array:
        parts = [sim.qpos[:, :7], sim.qvel[:, :7], *(self.body(sim, b) for b in self.bodies)]
        return self.xp.concatenate(parts, axis=1)

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        xp = self.xp
        goal = xp.zeros((qpos.shape[0], 2), dtype=qpos.dtype)

        def cylinder() -> Array:
            return xp.concatenate([draw.uniform(-0.3, 0, 1), draw.uniform(-0.2, 0.2, 1)], axis=1)

        qpos[:, -4:-2] = draw.until(cylinder, lambda c: xp.linalg.norm(c - goal, axis=1) > 0.17)
        qpos[:, -2:] = goal
        qvel = qvel + draw.uniform(-0.005, 0.005, qvel.shape[1])
        qvel[:, -4:] = 0
        return qpos, qvel

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        near = -self.distance(sim, "object", "tips_arm") * self.kw["reward_near_weight"]
        dist = -self.distance(sim, "object", "goal") * self.kw["reward_dist_weight"]
        ctrl = self.control_reward(action)
        terminated = self.xp.zeros(action.shape[0], dtype=self.xp.bool_)
        info = {"reward_dist": dist, "reward_ctrl": ctrl, "reward_near": near}
        return dist + ctrl + near, terminated, info


DEFINITIONS: tuple[type[Definition], ...] = (
    Ant,
    HalfCheetah,
    Hopper,
    Humanoid,
    HumanoidStandup,
    InvertedDoublePendulum,
    InvertedPendulum,
    Pusher,
    Reacher,
    Swimmer,
    Walker2d,
)
"""Every env with a batched form."""
