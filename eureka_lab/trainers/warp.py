"""The GPU trainer: the lean PPO of :mod:`.ppo` on MuJoCo Warp worlds, everything on one
device: simulation, the candidate's reward (on tensors, through numpy's names over torch)
and the networks. Only checkpoint statistics and parameters leave the device.

It uses the GPU when Warp and torch see one, and Warp's CPU device otherwise (for tests:
slow, but the same code). The tasks are the batched MuJoCo tasks
(:mod:`eureka_lab.batched.mujoco`); a task on another env is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from eureka_lab.reward.contract import RewardFn
from eureka_lab.runs.records import TrainingReport
from eureka_lab.task.model import Task
from eureka_lab.trainers.base import Budget, Report, Resources
from eureka_lab.trainers.ppo import PPOSettings, PPOTrainer

GPU_ENVS, CPU_ENVS = 4096, 64
"""Worlds per candidate when the settings leave it open: thousands on a GPU; few on Warp's
CPU device, which steps them one after another."""


class WarpSettings(PPOSettings):
    """The PPO's settings, with defaults sized to a GPU, and where Warp runs."""

    n_envs: int | None = Field(
        None,
        ge=1,
        description=f"Worlds per candidate (None: {GPU_ENVS} on a GPU, {CPU_ENVS} on CPU).",
    )
    n_steps: int = Field(32, ge=1, description="Steps per world between updates.")
    minibatch_size: int = Field(
        32768, ge=1, description="Transitions per gradient step (capped at the rollout size)."
    )
    epochs: int = Field(5, ge=1, description="Passes over each rollout.")
    device: Literal["cpu", "cuda", "auto"] = Field(
        "auto", description="Where Warp and torch run ('auto': cuda if there is one)."
    )
    memory_gib: float | None = Field(
        None, gt=0, description="Address-space limit (None: CUDA reserves far more than it uses)."
    )
    per_gpu: int = Field(
        4,
        ge=1,
        description="Training processes that share one GPU at once, each held to 1/per_gpu "
        "of its memory (with group > 1, each process trains a group).",
    )


def hold_memory_share(share: float) -> None:
    """Hold this process to ``share`` of the GPU's memory: torch's allocator (networks,
    rollouts, the reward's tensors) raises an out-of-memory error past it, and Warp's
    memory pool gives back what it frees beyond it, so processes sharing a GPU leave each
    other room. Warp's worlds are allocated once, at the start."""
    import torch

    from eureka_lab.batched.warp import init_warp

    share = min(max(share, 0.01), 1.0)
    torch.cuda.set_per_process_memory_fraction(share)
    init_warp().set_mempool_release_threshold("cuda:0", share)


class WarpTrainer(PPOTrainer):
    """Lean PPO on MuJoCo Warp: a process per candidate (or per ``group`` of them), up
    to ``per_gpu`` processes on one GPU at once."""

    Settings: ClassVar[type[BaseModel]] = WarpSettings
    reward_namespace: ClassVar[str] = "torch"
    settings: WarpSettings

    def __init__(self, settings: WarpSettings) -> None:
        from eureka_lab.batched.warp import kernel_cache

        super().__init__(settings)
        kernel_cache()  # one cache for the orchestrator and every job it starts

    @cached_property
    def device_name(self) -> str:
        """``cpu`` or ``cuda``; for ``auto``, asks Warp once."""
        if self.settings.device != "auto":
            return self.settings.device
        from eureka_lab.batched.warp import default_device

        return default_device()

    @property
    def n_envs(self) -> int:
        return self.settings.n_envs or (GPU_ENVS if self.device_name == "cuda" else CPU_ENVS)

    def envs_for(self, timesteps: int) -> int:
        return self.n_envs

    @property
    def resources(self) -> Resources:
        cuda = self.device_name == "cuda"
        mem = self.settings.memory_gib
        return Resources(
            threads=self.settings.threads,
            device="cuda" if cuda else "cpu",
            memory_bytes=None if mem is None else int(mem * 1024**3),
            gpus=1.0 / self.settings.per_gpu if cuda else 0.0,
        )

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["algorithm"] = "PPO (eureka-lab's torch PPO on MuJoCo Warp worlds, on one device)"
        return out

    def train(
        self,
        task: Task,
        load_reward: Callable[..., RewardFn | None],
        budget: Budget,
        report: Report,
    ) -> TrainingReport:
        from eureka_lab.batched.mujoco import MujocoBatch
        from eureka_lab.core.errors import ConfigError

        if not MujocoBatch.supports(task):
            raise ConfigError(
                f"the warp trainer runs the batched MuJoCo tasks only; {task.env_id} with "
                f"{sorted(task.env_kwargs)} is not one: use trainer 'ppo' or 'sb3'"
            )
        return super().train(task, load_reward, budget, report)

    def make_env(self, task: Task, n_envs: int, device: Any) -> Any:
        from eureka_lab.batched.warp import WarpBatch

        if self.device_name == "cuda":
            hold_memory_share(self.resources.gpus)
        return WarpBatch(task, n_envs, self.device_name)

    def reward_computer(self, load_reward: Callable[..., RewardFn | None], device: Any) -> Any:
        from eureka_lab.reward.applied import TensorReward

        return TensorReward(load_reward(namespace="torch", device=str(device)))
