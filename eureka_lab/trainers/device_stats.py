"""Training statistics kept where the tensors are: the twins of
:class:`~eureka_lab.reward.applied.ComponentStats` and :class:`~eureka_lab.reward.applied.EpisodeTracker`
for a trainer whose simulation and reward live on a device (the warp trainer).

Each step only queues device operations; nothing waits for the device until a checkpoint
reads a snapshot, which has the same form (and, to float precision, the same numbers) as
the numpy classes give.
"""

from __future__ import annotations

from typing import Any


class DeviceComponentStats:
    """Mean, min and max of each reward component since the last snapshot."""

    def __init__(self) -> None:
        self._steps: dict[str, list[Any]] = {}

    def add(self, components: dict[str, Any]) -> None:
        import torch

        for name, values in components.items():
            v = values.detach().reshape(-1)
            count = torch.full((), v.numel(), dtype=torch.float64, device=v.device)
            row = torch.stack(
                [v.sum(dtype=torch.float64), v.min().double(), v.max().double(), count]
            )
            self._steps.setdefault(name, []).append(row)

    def snapshot(self) -> dict[str, dict[str, float]]:
        import torch

        out = {}
        for name, rows in self._steps.items():
            table = torch.stack(rows).cpu()
            total, count = float(table[:, 0].sum()), float(table[:, 3].sum())
            out[name] = {
                "mean": total / count,
                "min": float(table[:, 1].min()),
                "max": float(table[:, 2].max()),
            }
        self._steps = {}
        return out


class DeviceEpisodeTracker:
    """Lengths and returns of the training episodes finished since the last snapshot."""

    def __init__(self, n_envs: int, device: Any) -> None:
        import torch

        self._length = torch.zeros(n_envs, dtype=torch.float64, device=device)
        self._env_return = torch.zeros(n_envs, dtype=torch.float64, device=device)
        self._reward_return = torch.zeros(n_envs, dtype=torch.float64, device=device)
        self._finished: list[Any] = []
        """Per step: episodes finished, and the sums of their lengths and returns."""

    def add(self, env_rewards: Any, rewards: Any, dones: Any) -> None:
        import torch

        self._length += 1
        self._env_return += env_rewards.double()
        self._reward_return += rewards.double()
        done = dones.to(torch.float64)
        self._finished.append(
            torch.stack(
                [
                    done.sum(),
                    (self._length * done).sum(),
                    (self._env_return * done).sum(),
                    (self._reward_return * done).sum(),
                ]
            )
        )
        keep = 1.0 - done
        for running in (self._length, self._env_return, self._reward_return):
            running *= keep

    def snapshot(self) -> dict[str, float | int | None]:
        import torch

        rows, self._finished = self._finished, []
        count, length, env_return, reward_return = (
            torch.stack(rows).sum(0).cpu().tolist() if rows else (0.0, 0.0, 0.0, 0.0)
        )
        if count == 0:
            return {
                "episodes": 0,
                "episode_length": None,
                "env_return": None,
                "reward_return": None,
            }
        return {
            "episodes": int(count),
            "episode_length": length / count,
            "env_return": env_return / count,
            "reward_return": reward_return / count,
        }
