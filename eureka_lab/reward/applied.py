"""Generated rewards enter through a wrapper around the vectorised env, never by editing
env source. The env's own reward is kept beside the candidate's, and every component is
logged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eureka_lab.reward.contract import RewardFn, batch_info, check_reward_output

ENV_COMPONENT = "env_reward"
"""Component name used when training on the env's own reward."""


class RewardComputer:
    """Applies a reward function to one batched transition and checks the contract."""

    def __init__(self, reward_fn: RewardFn | None) -> None:
        self.reward_fn = reward_fn

    def __call__(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        next_obs: np.ndarray,
        infos: Sequence[dict[str, Any]],
        env_rewards: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self.batched(obs, actions, next_obs, batch_info(infos), env_rewards)

    def batched(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        next_obs: np.ndarray,
        info: dict[str, np.ndarray],
        env_rewards: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The same, with ``info`` already batched (a batched env's ``Step.info``)."""
        n = len(env_rewards)
        if self.reward_fn is None:
            total = np.asarray(env_rewards, dtype=np.float64)
            return total, {ENV_COMPONENT: total}
        from eureka_lab.reward.loader import call_reward

        result = call_reward(self.reward_fn, obs, actions, next_obs, info)
        return check_reward_output(result, n)


class ComponentStats:
    """Running mean / min / max of each component since the last snapshot."""

    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._min: dict[str, float] = {}
        self._max: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def add(self, components: dict[str, np.ndarray]) -> None:
        for name, values in components.items():
            self._sum[name] = self._sum.get(name, 0.0) + float(values.sum())
            self._count[name] = self._count.get(name, 0) + values.size
            lo, hi = float(values.min()), float(values.max())
            self._min[name] = min(self._min.get(name, lo), lo)
            self._max[name] = max(self._max.get(name, hi), hi)

    def snapshot(self) -> dict[str, dict[str, float]]:
        out = {
            name: {
                "mean": self._sum[name] / self._count[name],
                "min": self._min[name],
                "max": self._max[name],
            }
            for name in self._sum
        }
        self.__init__()  # type: ignore[misc]
        return out


class EpisodeTracker:
    """Lengths and env returns of the training episodes finished since the last snapshot."""

    def __init__(self, n_envs: int) -> None:
        self._length = np.zeros(n_envs, dtype=np.int64)
        self._env_return = np.zeros(n_envs)
        self._reward_return = np.zeros(n_envs)
        self.finished: list[tuple[int, float, float]] = []

    def add(self, env_rewards: np.ndarray, rewards: np.ndarray, dones: np.ndarray) -> None:
        self._length += 1
        self._env_return += env_rewards
        self._reward_return += rewards
        for i in np.flatnonzero(dones):
            self.finished.append(
                (int(self._length[i]), float(self._env_return[i]), float(self._reward_return[i]))
            )
            self._length[i] = 0
            self._env_return[i] = 0.0
            self._reward_return[i] = 0.0

    def snapshot(self) -> dict[str, float | int | None]:
        done, self.finished = self.finished, []
        if not done:
            return {
                "episodes": 0,
                "episode_length": None,
                "env_return": None,
                "reward_return": None,
            }
        lengths, env_returns, returns = zip(*done, strict=True)
        return {
            "episodes": len(done),
            "episode_length": float(np.mean(lengths)),
            "env_return": float(np.mean(env_returns)),
            "reward_return": float(np.mean(returns)),
        }


def true_next_obs(next_obs: np.ndarray, dones: np.ndarray, infos: Sequence[dict]) -> np.ndarray:
    """The observation each env actually reached (SB3 auto-resets finished envs)."""
    if not dones.any():
        return next_obs
    out = np.array(next_obs, copy=True)
    for i in np.flatnonzero(dones):
        terminal = infos[i].get("terminal_observation")
        if terminal is not None:
            out[i] = terminal
    return out


def make_reward_wrapper(venv: Any, reward_fn: RewardFn | None) -> Any:
    """Wrap an SB3 VecEnv so it returns the candidate's reward (built lazily: imports SB3)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class RewardVecWrapper(VecEnvWrapper):
        def __init__(self) -> None:
            super().__init__(venv)
            self.compute = RewardComputer(reward_fn)
            self.components = ComponentStats()
            self.episodes = EpisodeTracker(venv.num_envs)
            self._obs: np.ndarray | None = None
            self._actions: np.ndarray | None = None

        def reset(self) -> np.ndarray:
            self._obs = self.venv.reset()
            return self._obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions)
            self.venv.step_async(actions)

        def step_wait(self) -> tuple:
            next_obs, env_rewards, dones, infos = self.venv.step_wait()
            reached = true_next_obs(next_obs, dones, infos)
            total, comps = self.compute(self._obs, self._actions, reached, infos, env_rewards)
            self.components.add(comps)
            self.episodes.add(np.asarray(env_rewards, dtype=np.float64), total, dones)
            self._obs = next_obs
            return next_obs, total.astype(np.float32), dones, infos

    return RewardVecWrapper()
