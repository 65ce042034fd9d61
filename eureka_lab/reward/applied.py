"""A loaded reward applied to a batch of transitions, its output checked against the
contract: on numpy arrays (:class:`RewardComputer`, and the vectorised-env wrapper through
which generated rewards enter SB3's training, never by editing env source) and on torch
tensors (:class:`TensorReward`, :class:`TensorCheck`). The env's own reward is kept beside
the candidate's, and every component is logged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eureka_lab.core.errors import ContractError
from eureka_lab.reward.contract import RewardFn, batch_info, check_components, check_reward_output
from eureka_lab.reward.loader import call_reward

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
        result = call_reward(self.reward_fn, obs, actions, next_obs, info)
        return check_reward_output(result, n)


class ComponentStats:
    """Running mean / min / max of each component since the last snapshot."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
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
        self._reset()
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


def true_next_obs(
    next_obs: np.ndarray, dones: np.ndarray, infos: Sequence[dict[str, Any]]
) -> np.ndarray:
    """The observation each env actually reached (SB3 auto-resets finished envs)."""
    if not dones.any():
        return next_obs
    out = np.array(next_obs, copy=True)
    for i in np.flatnonzero(dones):
        terminal = infos[int(i)].get("terminal_observation")
        if terminal is not None:
            out[i] = terminal
    return out


def make_reward_wrapper(venv: Any, reward_fn: RewardFn | None) -> Any:
    """Wrap an SB3 VecEnv so it returns the candidate's reward (built lazily: imports SB3)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

    def arrays(obs: VecEnvObs) -> np.ndarray:
        """The envs' observations: one array, as the reward contract has them (the SB3
        trainer's MlpPolicy refuses dict and tuple observation spaces)."""
        assert isinstance(obs, np.ndarray)
        return obs

    class RewardVecWrapper(VecEnvWrapper):
        def __init__(self) -> None:
            super().__init__(venv)
            self.compute = RewardComputer(reward_fn)
            self.components = ComponentStats()
            self.episodes = EpisodeTracker(venv.num_envs)
            self._obs: np.ndarray | None = None
            self._actions: np.ndarray | None = None

        def reset(self) -> np.ndarray:
            self._obs = arrays(self.venv.reset())
            return self._obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions)
            self.venv.step_async(actions)

        def step_wait(self) -> VecEnvStepReturn:
            step_obs, env_rewards, dones, infos = self.venv.step_wait()
            next_obs = arrays(step_obs)
            obs, actions = self._obs, self._actions
            assert obs is not None and actions is not None  # reset() and step_async() came first
            reached = true_next_obs(next_obs, dones, infos)
            total, comps = self.compute(obs, actions, reached, infos, env_rewards)
            self.components.add(comps)
            self.episodes.add(np.asarray(env_rewards, dtype=np.float64), total, dones)
            self._obs = next_obs
            return next_obs, total.astype(np.float32), dones, infos

    return RewardVecWrapper()


# ----------------------------------------------------------------------------- on tensors


def check_output(result: Any, n_envs: int, tolerance: float = 1e-3) -> tuple[Any, dict[str, Any]]:
    """Validate a reward's output on tensors, as :func:`eureka_lab.reward.contract.check_reward_output`
    does on arrays; ContractError names the problem. Returns float32 tensors."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError(
            f"compute_reward must return (total, components), got {type(result).__name__}"
        )
    total, components = result
    total = _as_batch(total, n_envs, "total reward")
    check_components(components)
    comps = {
        name: _as_batch(value, n_envs, f"component {name!r}", total)
        for name, value in components.items()
    }
    import torch

    # One wait for the device per call: every check in one boolean; the slow path below
    # only runs to name what failed.
    summed = torch.stack(list(comps.values())).sum(0)
    gap = (summed - total).abs().max()
    finite = torch.isfinite(torch.stack([total, *comps.values()])).all()
    if bool(finite & (gap <= tolerance * (1.0 + total.abs().max()))):
        return total, comps
    for what, value in [
        ("total reward", total),
        *((f"component {k!r}", v) for k, v in comps.items()),
    ]:
        if not bool(torch.isfinite(value).all()):
            raise ContractError(f"{what} has non-finite values (NaN or inf)")
    raise ContractError(
        f"the components do not sum to the total (largest gap {float(gap):.3g}); return the "
        "sum of the components as the total"
    )


def _as_batch(value: Any, n_envs: int, what: str, like: Any = None) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ContractError(f"{what} is not numeric: {e}") from None
        if like is not None:
            value = value.to(like.device)
    value = value.to(torch.float32)
    if value.ndim == 0:
        raise ContractError(
            f"{what} is a scalar; it must have shape ({n_envs},), one value per env"
        )
    if tuple(value.shape) != (n_envs,):
        raise ContractError(
            f"{what} has shape {tuple(value.shape)}; it must have shape ({n_envs},)"
        )
    return value


class TensorReward:
    """Applies a reward loaded over torch to one batched transition of tensors, checked
    (the tensor twin of :class:`eureka_lab.reward.applied.RewardComputer`)."""

    def __init__(self, reward_fn: Any) -> None:
        self.reward_fn = reward_fn

    def batched(
        self, obs: Any, actions: Any, next_obs: Any, info: dict[str, Any], env_rewards: Any
    ) -> tuple[Any, dict[str, Any]]:
        if self.reward_fn is None:
            total = env_rewards.float()
            return total, {ENV_COMPONENT: total}
        return check_output(call_reward(self.reward_fn, obs, actions, next_obs, info), len(obs))


def to_tensor(x: Any) -> Any:
    """A numpy array (or number) as a CPU tensor, floats as float32."""
    import torch

    t = torch.as_tensor(np.asarray(x))
    return t.float() if t.is_floating_point() else t


class TensorCheck:
    """Validation's run on tensors: the reward loaded over torch, on the same numpy
    transitions made tensors, must work and give the numpy result to float32 precision."""

    def __init__(self, reward_fn: Any) -> None:
        self.reward = TensorReward(reward_fn)

    def __call__(
        self,
        obs: Any,
        actions: Any,
        next_obs: Any,
        info: dict[str, Any],
        env_rewards: Any,
        expected: Any,
    ) -> None:
        try:
            total, _ = self.reward.batched(
                to_tensor(obs),
                to_tensor(actions),
                to_tensor(next_obs),
                {k: to_tensor(v) for k, v in info.items()},
                to_tensor(env_rewards),
            )
        except Exception as e:
            raise ContractError(
                f"the reward works on numpy arrays but not on the torch tensors this task's "
                f"trainer gives it ({type(e).__name__}: {e}). It gets `np` as numpy's names over "
                "torch: use numpy functions on whole arrays (np.sum(x, axis=1), np.clip, "
                "np.where, x.astype(np.float32)); no Python float() or int() of arrays, no "
                "numpy-only functions, no lists of per-env values"
            ) from e
        gap = float(np.max(np.abs(total.double().numpy() - expected)))
        if gap > 1e-3 * (1.0 + float(np.max(np.abs(expected)))):
            raise ContractError(
                f"the reward gives different values on torch tensors than on numpy arrays "
                f"(largest gap {gap:.3g}): keep it to numpy's functions on whole arrays"
            )
