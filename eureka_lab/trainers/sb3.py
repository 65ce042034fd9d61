"""The SB3 trainer: stable-baselines3 PPO on a vectorised Gymnasium env with the candidate's
reward applied by a wrapper, checkpoint statistics, and policies reported as plain arrays.

Works for any Gymnasium env, custom ones included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from eureka_lab.reward.contract import RewardFn
from eureka_lab.runs.records import CheckpointStats, TrainingReport
from eureka_lab.task.model import Task
from eureka_lab.trainers.base import (
    Act,
    Arrays,
    Budget,
    Report,
    Resources,
    Trainer,
    ppo_description,
)

POLICY_PREFIX = "policy/"
OBS_MEAN, OBS_VAR = "obs_norm/mean", "obs_norm/var"
CLIP_OBS, NORM_EPSILON = 10.0, 1e-8
"""VecNormalize's defaults, used both when training and when evaluating."""


class SB3Settings(BaseModel):
    """Hyperparameters of stable-baselines3 PPO (names as in SB3 and RL Baselines3 Zoo)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_envs: int = Field(8, ge=1, description="Parallel environments per candidate.")
    n_steps: int = Field(256, ge=1, description="Steps per env between updates.")
    batch_size: int = Field(256, ge=1, description="Minibatch size.")
    n_epochs: int = Field(10, ge=1, description="Passes over each rollout.")
    learning_rate: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.0, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    normalize_obs: bool = Field(False, description="VecNormalize the observations.")
    normalize_reward: bool = Field(False, description="VecNormalize the reward.")
    net_arch: tuple[int, ...] = Field((64, 64), description="Hidden layer sizes.")
    log_std_init: float = Field(0.0, description="Initial log std (continuous actions).")
    threads: int = Field(1, ge=1, description="Torch threads per candidate.")
    memory_gib: float | None = Field(8.0, gt=0, description="Address-space limit per job.")

    def sb3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO``."""
        kw = self.model_dump(
            exclude={"n_envs", "normalize_obs", "normalize_reward", "threads", "memory_gib"}
        )
        net_arch, log_std_init = list(kw.pop("net_arch")), kw.pop("log_std_init")
        kw["policy_kwargs"] = {"net_arch": net_arch, "log_std_init": log_std_init}
        return kw


class SB3Trainer(Trainer):
    """PPO from stable-baselines3 on CPU, one process per candidate."""

    Settings: ClassVar[type[BaseModel]] = SB3Settings
    resumable: ClassVar[bool] = False
    settings: SB3Settings

    def __init__(self, settings: SB3Settings) -> None:
        self.settings = settings

    @property
    def n_envs(self) -> int:
        return self.settings.n_envs

    @property
    def resources(self) -> Resources:
        memory = self.settings.memory_gib
        return Resources(
            threads=self.settings.threads,
            device="cpu",
            memory_bytes=None if memory is None else int(memory * 1024**3),
        )

    def describe(self) -> dict[str, Any]:
        return ppo_description("PPO (stable-baselines3)", self.settings)

    def train(
        self,
        task: Task,
        load_reward: Callable[..., RewardFn | None],
        budget: Budget,
        report: Report,
    ) -> TrainingReport:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.running_mean_std import RunningMeanStd
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        from eureka_lab.reward.applied import make_reward_wrapper

        s = self.settings
        torch.set_num_threads(s.threads)
        venv = DummyVecEnv([task.make_env for _ in range(s.n_envs)])
        venv.seed(budget.seed)
        wrapped = make_reward_wrapper(venv, load_reward())
        env: Any = wrapped
        normalizer = None
        if s.normalize_obs or s.normalize_reward:
            normalizer = VecNormalize(
                wrapped,
                norm_obs=s.normalize_obs,
                norm_reward=s.normalize_reward,
                gamma=s.gamma,
                clip_obs=CLIP_OBS,
                epsilon=NORM_EPSILON,
            )
            env = normalizer
        model = PPO("MlpPolicy", env, seed=budget.seed, device="cpu", verbose=0, **s.sb3_kwargs())
        model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default writes to /tmp
        started = time.monotonic()
        reported: list[int] = []
        components: list[str] = []

        def checkpoint(step: int) -> None:
            comps = wrapped.components.snapshot()
            components[:] = sorted(comps)
            stats = CheckpointStats(
                step=step,
                components=comps,
                seconds=round(time.monotonic() - started, 2),
                **wrapped.episodes.snapshot(),
            )
            arrays = {
                POLICY_PREFIX + k: v.detach().cpu().numpy().astype(np.float32)
                for k, v in model.policy.state_dict().items()
            }
            if normalizer is not None and s.normalize_obs:
                # SB3's attribute is typed as its dict case (Dict spaces, which MlpPolicy
                # refuses); on one array of observations it is one RunningMeanStd.
                rms = cast(RunningMeanStd, normalizer.obs_rms)
                arrays[OBS_MEAN] = rms.mean.astype(np.float32)
                arrays[OBS_VAR] = rms.var.astype(np.float32)
            reported.append(step)
            report(stats, arrays)

        class Checkpoints(BaseCallback):
            def _on_step(self) -> bool:
                # Before the end only: SB3 finishes its last rollout past the budget, and
                # the end of training is the last checkpoint (one, not one at the budget
                # and another a rollout later).
                if budget.due(self.num_timesteps, reported[-1] if reported else 0):
                    checkpoint(self.num_timesteps)
                return True

        model.learn(total_timesteps=budget.timesteps, callback=Checkpoints())
        if not reported or reported[-1] < model.num_timesteps:
            checkpoint(model.num_timesteps)
        env.close()
        return TrainingReport(
            steps=int(model.num_timesteps),
            seconds=round(time.monotonic() - started, 2),
            components=components,
        )

    def policy(self, task: Task, arrays: Arrays) -> Act:
        import torch
        from stable_baselines3.common.policies import ActorCriticPolicy

        s = self.settings
        env = task.make_env()
        policy = ActorCriticPolicy(
            env.observation_space,
            env.action_space,
            lr_schedule=lambda _: 0.0,
            net_arch=list(s.net_arch),
            log_std_init=s.log_std_init,
        )
        env.close()
        state = {
            k.removeprefix(POLICY_PREFIX): torch.from_numpy(np.array(v))
            for k, v in arrays.items()
            if k.startswith(POLICY_PREFIX)
        }
        policy.load_state_dict(state, strict=True)
        policy.set_training_mode(False)
        mean, var = arrays.get(OBS_MEAN), arrays.get(OBS_VAR)

        def act(obs: np.ndarray) -> np.ndarray:
            if mean is not None and var is not None:
                obs = np.clip((obs - mean) / np.sqrt(var + NORM_EPSILON), -CLIP_OBS, CLIP_OBS)
            return policy.predict(obs.astype(np.float32), deterministic=True)[0]

        return act
