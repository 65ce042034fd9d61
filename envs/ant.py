"""Ant-v5: make the four-legged ant walk forward (towards +x).

Observation (27; the task leaves out the contact forces): [0] torso height z, [1:5] torso
orientation as a quaternion (w, x, y, z), [5:13] joint angles (hip then ankle of legs 1 to
4), [13:16] torso velocity (x, y, z), [16:19] torso angular velocity, [19:27] joint angular
velocities. Action (8): joint torques in [-1, 1]. The episode ends when the torso's height
leaves [0.2, 1.0] (it flips or jumps). Info: x_position, y_position, distance_from_origin,
x_velocity, y_velocity.
"""

import numpy as np


def fitness(episode):
    """Displacement of the torso along +x over the episode, in metres."""
    return float(episode.qpos[-1, 0] - episode.qpos[0, 0])


def sparse_reward(obs, action, next_obs, info):
    velocity = np.asarray(info["x_velocity"], dtype=np.float64)
    return velocity, {"forward_velocity": velocity}


def alive_forward_reward(obs, action, next_obs, info):
    """Forward speed, a bonus for every step alive, a torque cost."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    alive = np.ones(len(next_obs), dtype=np.float64)
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "forward": 1.0 * forward,
        "alive": 1.0 * alive,
        "torque": -0.5 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def upright_forward_reward(obs, action, next_obs, info):
    """Forward speed while keeping the torso level (its z axis pointing up) and going
    straight (little sideways speed)."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    sideways = np.abs(np.asarray(info["y_velocity"], dtype=np.float64))
    upright = 1.0 - 2.0 * (next_obs[:, 2] ** 2 + next_obs[:, 3] ** 2)
    components = {
        "forward": 1.0 * forward,
        "upright": 0.5 * upright,
        "sideways": -0.2 * sideways,
        "torque": -0.1 * np.sum(action**2, axis=1),
    }
    total = sum(components.values())
    return total, components
