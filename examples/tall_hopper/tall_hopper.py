"""The task's private code: its fitness and hand-written rewards (jobs cannot read it).

Observation (11), as Hopper-v5's: [0] torso height z, [1] torso pitch, [2:5] thigh, leg and
foot angles, [5] forward velocity, [6] vertical velocity, [7] pitch rate, [8:11] joint
angular velocities (velocities clipped to [-10, 10]). Info: x_position, x_velocity, height.
"""

import numpy as np


def fitness(episode):
    """Forward displacement of the torso over the episode, in metres."""
    return float(episode.qpos[-1, 0] - episode.qpos[0, 0])


def sparse_reward(obs, action, next_obs, info):
    velocity = np.asarray(info["x_velocity"], dtype=np.float64)
    return velocity, {"forward_velocity": velocity}


def tall_forward_reward(obs, action, next_obs, info):
    """Forward speed, a bonus for every step up, and a bonus for height above the floor of
    the episode."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    height = np.asarray(info["height"], dtype=np.float64)
    components = {
        "forward": 1.0 * forward,
        "alive": np.ones_like(forward),
        "height": 2.0 * np.clip(height - 1.0, 0.0, 0.3),
        "torque": -0.001 * np.sum(action**2, axis=1),
    }
    return sum(components.values()), components
