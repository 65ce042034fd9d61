"""CartPole-v1: keep the pole balanced on the moving cart.

Observation: [cart position, cart velocity, pole angle, pole angular velocity]. The
episode ends when |pole angle| > 0.2095 rad (12 degrees), |cart position| > 2.4, or after
500 steps. Actions: 0 push the cart left, 1 push it right.
"""

import numpy as np

ANGLE_LIMIT = 0.2095
POSITION_LIMIT = 2.4


def fitness(episode):
    """Steps survived (500 is the maximum)."""
    return float(episode.length)


def sparse_reward(obs, action, next_obs, info):
    alive = np.ones(len(next_obs), dtype=np.float64)
    return alive, {"alive": alive}


def upright_reward(obs, action, next_obs, info):
    """Keep the pole vertical and the cart near the centre."""
    angle = next_obs[:, 2]
    position = next_obs[:, 0]
    components = {
        "upright": 1.0 * (1.0 - np.abs(angle) / ANGLE_LIMIT),
        "centered": 0.5 * (1.0 - np.abs(position) / POSITION_LIMIT),
    }
    total = sum(components.values())
    return total, components


def stillness_reward(obs, action, next_obs, info):
    """Stay alive while keeping the pole and the cart still."""
    alive = np.ones(len(next_obs), dtype=np.float64)
    pole_speed = np.abs(next_obs[:, 3])
    cart_speed = np.abs(next_obs[:, 1])
    angle_sq = next_obs[:, 2] ** 2
    components = {
        "alive": 1.0 * alive,
        "pole_speed": -0.1 * pole_speed,
        "cart_speed": -0.05 * cart_speed,
        "angle": -5.0 * angle_sq,
    }
    total = sum(components.values())
    return total, components
