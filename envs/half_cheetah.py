"""HalfCheetah-v5: make the two-legged planar cheetah run forward (towards +x).

Observation (17): [0] torso height z, [1] torso pitch angle, [2:8] joint angles (back
thigh, back shin, back foot, front thigh, front shin, front foot), [8] forward velocity,
[9] vertical velocity, [10] pitch angular velocity, [11:17] joint angular velocities.
Action (6): joint torques in [-1, 1]. Info: x_position, x_velocity.
"""

import numpy as np


def fitness(episode):
    """Forward displacement of the torso over the episode, in metres."""
    return float(episode.qpos[-1, 0] - episode.qpos[0, 0])


def sparse_reward(obs, action, next_obs, info):
    velocity = np.asarray(info["x_velocity"], dtype=np.float64)
    return velocity, {"forward_velocity": velocity}


def velocity_reward(obs, action, next_obs, info):
    """Forward speed with a small torque cost."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "forward": 1.0 * forward,
        "torque": -0.1 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def upright_run_reward(obs, action, next_obs, info):
    """Forward speed while keeping the torso level (not flipping onto its back)."""
    forward = next_obs[:, 8]
    pitch = np.abs(next_obs[:, 1])
    pitch_rate = np.abs(next_obs[:, 10])
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "forward": 1.0 * forward,
        "level": -0.5 * pitch,
        "pitch_rate": -0.05 * pitch_rate,
        "torque": -0.05 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def _clipped_speed(v, limit):
    return np.clip(v, -limit, limit)


def progress_reward(obs, action, next_obs, info):
    """Clipped forward speed plus a bonus for moving forward at all."""
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    speed = _clipped_speed(forward, 10.0)
    moving = (forward > 0.5).astype(np.float64)
    components = {
        "speed": 1.0 * speed,
        "moving": 0.5 * moving,
        "torque": -0.1 * np.sum(action**2, axis=1),
    }
    total = sum(components.values())
    return total, components
