"""Small user-defined environments for the tests (importable as
``support.custom_envs:Class``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


def goal_distance(position: np.ndarray, goal: np.ndarray) -> float:
    """Euclidean distance from the agent to the goal."""
    return float(np.linalg.norm(position - goal))


def shaped_reward(distance: float) -> float:
    return -distance


class _GoalObservation(gym.Env):
    """Base class that owns the observation, as user code often does."""

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.goal]).astype(np.float32)


class ReachEnv(_GoalObservation):
    """Move a point to a goal.

    ## Rewards
    The reward is the negative distance, plus a bonus near the goal.
    """

    def __init__(self, reward_scale: float = 1.0, size: float = 2.0, success_bonus: float = 5.0):
        self.reward_scale = reward_scale
        self._success_bonus = success_bonus
        self.size = size
        self.observation_space = gym.spaces.Box(-size, size, shape=(4,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-self.size, self.size, size=2)
        self.goal = self.np_random.uniform(-self.size, self.size, size=2)
        return self._get_obs(), {"distance": goal_distance(self.position, self.goal)}

    def _reward_terms(self, distance: float) -> dict[str, float]:
        # A comment that mentions the reward: comments never reach the model.
        return {"reward_distance": self.reward_scale * shaped_reward(distance)}

    def step(self, action):
        self.position = np.clip(self.position + 0.1 * np.asarray(action), -self.size, self.size)
        distance = goal_distance(self.position, self.goal)
        terms = self._reward_terms(distance)
        reached = distance < 0.1
        if reached:
            terms["bonus"] = self._success_bonus
        total = sum(terms.values())
        info = {"distance": distance, "reward_bonus": float(reached) * self._success_bonus}
        return self._get_obs(), total, reached, False, info
