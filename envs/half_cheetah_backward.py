"""HalfCheetah-v5 running backward (towards -x).

Observation (17): [0] torso height z, [1] torso pitch angle, [2:8] joint angles (back
thigh, back shin, back foot, front thigh, front shin, front foot), [8] forward velocity
(negative when moving backward), [9] vertical velocity, [10] pitch angular velocity,
[11:17] joint angular velocities. Action (6): joint torques in [-1, 1].
Info: x_position, x_velocity.
"""

import numpy as np


def fitness(episode):
    """Backward displacement of the torso over the episode, in metres."""
    return float(episode.qpos[0, 0] - episode.qpos[-1, 0])


def sparse_reward(obs, action, next_obs, info):
    backward = -np.asarray(info["x_velocity"], dtype=np.float64)
    return backward, {"backward_velocity": backward}


def human_reward(obs, action, next_obs, info):
    """Hand-written: backward speed minus a torque cost (HalfCheetah's reward, mirrored)."""
    backward = -np.asarray(info["x_velocity"], dtype=np.float64)
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "backward": 1.0 * backward,
        "torque": -0.1 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def backward_level_reward(obs, action, next_obs, info):
    """Backward speed while keeping the torso level."""
    backward = -next_obs[:, 8]
    pitch = np.abs(next_obs[:, 1])
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "backward": 1.0 * backward,
        "level": -0.5 * pitch,
        "torque": -0.05 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def backward_progress_reward(obs, action, next_obs, info):
    """Clipped backward speed plus a bonus for moving backward at all."""
    backward = -np.asarray(info["x_velocity"], dtype=np.float64)
    speed = np.clip(backward, -10.0, 10.0)
    moving = (backward > 0.5).astype(np.float64)
    components = {
        "speed": 1.0 * speed,
        "moving": 0.5 * moving,
        "torque": -0.1 * np.sum(action**2, axis=1),
    }
    total = sum(components.values())
    return total, components
