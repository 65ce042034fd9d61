"""Humanoid-v5: make the 3D humanoid walk forward (towards +x) without falling.

Observation (45; the task leaves out the bodies' inertia, velocities, actuator and contact
forces): [0] torso height z, [1:5] torso orientation as a quaternion (w, x, y, z), [5:22]
joint angles (abdomen z, y, x; right hip x, z, y, knee; left hip x, z, y, knee; right
shoulder 1, 2, elbow; left shoulder 1, 2, elbow), [22:25] torso velocity (x, y, z),
[25:28] torso angular velocity, [28:45] joint angular velocities in the same order.
Action (17): joint torques in [-0.4, 0.4]. The episode ends when the torso's height leaves
[1.0, 2.0] (it falls). Info: x_position, y_position, distance_from_origin, x_velocity,
y_velocity (of the centre of mass), tendon_length, tendon_velocity.
"""

import numpy as np


def fitness(episode):
    """Displacement of the torso along +x over the episode, in metres."""
    return float(episode.qpos[-1, 0] - episode.qpos[0, 0])


def sparse_reward(obs, action, next_obs, info):
    velocity = np.asarray(info["x_velocity"], dtype=np.float64)
    return velocity, {"forward_velocity": velocity}


def alive_forward_reward(obs, action, next_obs, info):
    """Forward speed of the centre of mass, a large bonus for every step standing, a
    torque cost (the weights of Gymnasium's own reward)."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    alive = np.ones(len(next_obs), dtype=np.float64)
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "forward": 1.25 * forward,
        "alive": 5.0 * alive,
        "torque": -0.1 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def upright_forward_reward(obs, action, next_obs, info):
    """Forward speed while standing tall with the torso upright."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    height = next_obs[:, 0]
    upright = 1.0 - 2.0 * (next_obs[:, 2] ** 2 + next_obs[:, 3] ** 2)
    components = {
        "forward": 1.25 * forward,
        "height": 5.0 * np.clip(height - 1.0, 0.0, 0.4),
        "upright": 2.0 * upright,
        "alive": 2.0 * np.ones_like(height),
    }
    total = sum(components.values())
    return total, components
