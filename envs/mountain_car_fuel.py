"""MountainCar-v0 with a person's first-try rewards: each charges for fuel (any push),
which the car can only afford once it has learned to rock up the hill, so early in
training the cheapest thing to do is to idle. The quick start's task: the loop has to
find out, from the training statistics, what holds these rewards back.

Observation: [position, velocity]; position in [-1.2, 0.6], the flag at 0.5; the hill
height is sin(3 * position). Actions: 0 push left, 1 no push, 2 push right.
"""

import numpy as np

GOAL_POSITION = 0.5
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


def first_try_reward(obs, action, next_obs, info):
    """A bonus at the flag, a cost per step, and a cost for fuel (any push)."""
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    pushing = (action != 1).astype(np.float64)
    components = {
        "goal": 10.0 * at_goal,
        "time": -1.0 * np.ones_like(at_goal),
        "fuel": -2.0 * pushing,
    }
    total = sum(components.values())
    return total, components


def height_fuel_reward(obs, action, next_obs, info):
    """Height on the hills, a bonus at the flag, and a cost for fuel (any push)."""
    height = np.sin(3.0 * next_obs[:, 0])
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    pushing = (action != 1).astype(np.float64)
    components = {
        "height": 0.1 * height,
        "goal": 10.0 * at_goal,
        "fuel": -1.0 * pushing,
    }
    total = sum(components.values())
    return total, components


def speed_fuel_reward(obs, action, next_obs, info):
    """Speed in either direction, a bonus at the flag, and a cost for fuel (any push)."""
    speed = np.abs(next_obs[:, 1])
    at_goal = (next_obs[:, 0] >= GOAL_POSITION).astype(np.float64)
    pushing = (action != 1).astype(np.float64)
    components = {
        "speed": 10.0 * speed,
        "goal": 1.0 * at_goal,
        "fuel": -0.5 * pushing,
    }
    total = sum(components.values())
    return total, components
