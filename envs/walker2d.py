"""Walker2d-v5: make the planar two-legged walker walk forward (towards +x).

Observation (17): [0] torso height z, [1] torso pitch angle, [2:5] right thigh, leg and
foot joint angles, [5:8] the left leg's, [8] forward velocity, [9] vertical velocity,
[10] pitch angular velocity, [11:17] joint angular velocities (right thigh, leg, foot,
then the left leg's). Velocities are clipped to [-10, 10]. Action (6): joint torques in
[-1, 1]. The episode ends when the walker falls (height outside [0.8, 2.0] or |pitch| > 1).
Info: x_position, z_distance_from_origin, x_velocity.
"""

import numpy as np


def fitness(episode):
    """Forward displacement of the torso over the episode, in metres."""
    return float(episode.qpos[-1, 0] - episode.qpos[0, 0])


def sparse_reward(obs, action, next_obs, info):
    velocity = np.asarray(info["x_velocity"], dtype=np.float64)
    return velocity, {"forward_velocity": velocity}


def alive_forward_reward(obs, action, next_obs, info):
    """Forward speed, a bonus for every step alive, a small torque cost."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    alive = np.ones(len(next_obs), dtype=np.float64)
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "forward": 1.0 * forward,
        "alive": 1.0 * alive,
        "torque": -0.001 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def upright_forward_reward(obs, action, next_obs, info):
    """Forward speed while keeping the torso tall and upright."""
    forward = next_obs[:, 8]
    height = next_obs[:, 0]
    pitch = np.abs(next_obs[:, 1])
    components = {
        "forward": 1.0 * forward,
        "height": 1.0 * np.clip(height - 0.8, 0.0, 0.5),
        "upright": -0.5 * pitch,
        "alive": 0.5 * np.ones_like(height),
    }
    total = sum(components.values())
    return total, components
