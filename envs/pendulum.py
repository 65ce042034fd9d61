"""Pendulum-v1: swing the pendulum up and keep it balanced upright.

Observation: [cos(theta), sin(theta), angular velocity]; theta = 0 is upright.
Action: torque in [-2, 2].
"""

import numpy as np

UPRIGHT_COS = 0.95


def fitness(episode):
    """Fraction of the last half of the episode spent upright (cos(theta) > 0.95)."""
    cos_theta = episode.observations[1:, 0]
    last_half = cos_theta[len(cos_theta) // 2 :]
    if len(last_half) == 0:
        return 0.0
    return float(np.mean(last_half > UPRIGHT_COS))


def sparse_reward(obs, action, next_obs, info):
    upright = (next_obs[:, 0] > UPRIGHT_COS).astype(np.float64)
    return upright, {"upright": upright}


def upright_reward(obs, action, next_obs, info):
    """Reward height of the tip, penalise spinning and torque."""
    cos_theta = next_obs[:, 0]
    ang_vel = next_obs[:, 2]
    torque = action[:, 0]
    components = {
        "height": 1.0 * cos_theta,
        "spin": -0.01 * ang_vel**2,
        "torque": -0.001 * torque**2,
    }
    total = sum(components.values())
    return total, components


def angle_reward(obs, action, next_obs, info):
    """Penalise the squared angle from upright, with a bonus for being nearly upright."""
    theta = np.arctan2(next_obs[:, 1], next_obs[:, 0])
    ang_vel = next_obs[:, 2]
    near_top = (next_obs[:, 0] > UPRIGHT_COS).astype(np.float64)
    components = {
        "angle": -1.0 * theta**2,
        "spin": -0.1 * ang_vel**2,
        "near_top": 1.0 * near_top,
    }
    total = sum(components.values())
    return total, components


def energy_reward(obs, action, next_obs, info):
    """Drive the pendulum's energy towards that of resting upright, then stay still."""
    cos_theta = next_obs[:, 0]
    ang_vel = next_obs[:, 2]
    # Energy with g = 10, m = l = 1; resting upright has energy 10 * 1 = 10 (units m g l).
    energy = 0.5 * ang_vel**2 / 3.0 + 5.0 * (1.0 + cos_theta)
    energy_error = np.abs(energy - 10.0)
    components = {
        "energy": -0.1 * energy_error,
        "height": 1.0 * cos_theta,
        "spin": -0.01 * ang_vel**2,
    }
    total = sum(components.values())
    return total, components
