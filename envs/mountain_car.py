"""MountainCar-v0: drive the under-powered car up the right hill to the flag.

Observation: [position, velocity]; position in [-1.2, 0.6], the flag at 0.5; the hill
height is sin(3 * position). Actions: 0 push left, 1 no push, 2 push right.
"""

import numpy as np

GOAL_POSITION = 0.5
GRAVITY = 0.0025


TIME_LIMIT = 200


def fitness(episode):
    """0 if the car never reaches the flag; else 1 plus the share of the episode left when it
    got there (so faster is better: 1.5 means it arrived after 100 of 200 steps)."""
    positions = episode.observations[:, 0]
    reached = np.flatnonzero(positions >= GOAL_POSITION)
    if len(reached) == 0 and not episode.terminated:
        return 0.0
    step = int(reached[0]) if len(reached) else episode.length
    return 1.0 + max(TIME_LIMIT - step, 0) / TIME_LIMIT


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
