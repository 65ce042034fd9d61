"""MountainCar-v0: drive the under-powered car up the right hill to the flag.

Observation: [position, velocity]; position in [-1.2, 0.6], the flag at 0.5; the hill
height is sin(3 * position). Actions: 0 push left, 1 no push, 2 push right.
"""

import numpy as np

GOAL_POSITION = 0.5
GRAVITY = 0.0025


def fitness(episode):
    """1.0 if the car reached the flag (the episode terminated), else 0.0."""
    reached = episode.terminated or bool(np.max(episode.observations[:, 0]) >= GOAL_POSITION)
    return 1.0 if reached else 0.0


def sparse_reward(obs, action, next_obs, info):
    goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    return goal, {"goal": goal}


def _energy(o):
    # Kinetic plus potential energy of the car, in the simulator's units.
    return 0.5 * o[:, 1] ** 2 + GRAVITY * np.sin(3.0 * o[:, 0]) / 3.0


def energy_reward(obs, action, next_obs, info):
    """Reward the gain in mechanical energy, plus a bonus at the flag."""
    energy_gain = _energy(next_obs) - _energy(obs)
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    components = {
        "energy_gain": 1000.0 * energy_gain,
        "goal": 1.0 * at_goal,
    }
    total = sum(components.values())
    return total, components


def height_reward(obs, action, next_obs, info):
    """Reward the height reached on the hills and a bonus at the flag."""
    height = np.sin(3.0 * next_obs[:, 0])
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    components = {
        "height": 0.1 * height,
        "goal": 10.0 * at_goal,
        "time": -1.0 * np.ones_like(height),
    }
    total = sum(components.values())
    return total, components


def velocity_reward(obs, action, next_obs, info):
    """Reward speed in either direction, plus a bonus at the flag."""
    speed = np.abs(next_obs[:, 1])
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    components = {
        "speed": 10.0 * speed,
        "goal": 1.0 * at_goal,
    }
    total = sum(components.values())
    return total, components
