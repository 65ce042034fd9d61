"""The lean PPO trainer: the torch PPO of :mod:`.ppo_core` on a batched env
(:func:`eureka_lab.batched.make_batched`), the candidate's reward computed once per batched
step, checkpoint statistics, and the actor and observation normaliser reported as arrays.

Works for any Gymnasium env (through :class:`~eureka_lab.batched.GymBatch` where no faster
batched form is registered); it is fastest with many envs per process on a batched MuJoCo form.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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

ACTOR_PREFIX = "actor/"
OBS_MEAN, OBS_VAR = "obs_norm/mean", "obs_norm/var"


class PPOSettings(BaseModel):
    """Hyperparameters of the lean PPO (names as in SB3 where they mean the same)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_envs: int | None = Field(
        None,
        ge=1,
        description="Parallel environments per candidate, stepped as one batch (None: "
        "chosen from the budget, see envs_for).",
    )
    n_steps: int = Field(
        64, ge=1, description="Steps per env between updates (rollout = n_envs * n_steps)."
    )
    minibatch_size: int = Field(
        1024, ge=1, description="Transitions per gradient step (capped at the rollout size)."
    )
    epochs: int = Field(10, ge=1, description="Passes over each rollout.")
    learning_rate: float = Field(3e-4, gt=0, description="Adam step size (constant).")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    clip_range: float = Field(0.2, gt=0, description="PPO ratio clip.")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss weight.")
    max_grad_norm: float = Field(0.5, gt=0, description="Global gradient-norm clip.")
    normalize_obs: bool = Field(
        True, description="Normalise observations by running mean/var (also at evaluation)."
    )
    normalize_reward: bool = Field(
        True, description="Divide rewards by the running std of the discounted return."
    )
    net_arch: tuple[int, ...] = Field(
        (64, 64), description="Hidden layer sizes (actor and critic, separate, tanh)."
    )
    log_std_init: float = Field(0.0, description="Initial log std (continuous actions).")
    threads: int = Field(
        1, ge=1, description="Torch threads, and threads of the batched env, per candidate."
    )
    group: int = Field(
        1,
        ge=1,
        description="Candidates trained together in one process, each with its own policy "
        "on its own n_envs worlds of one batch (1: a process per candidate).",
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where the networks and rollout live ('auto': cuda if available)."
    )
    memory_gib: float | None = Field(
        8.0, gt=0, description="Address-space limit per job (ignored on cuda: None)."
    )

    def config(self) -> Any:
        from eureka_lab.trainers.ppo_core import PPOConfig

        return PPOConfig(
            n_steps=self.n_steps,
            minibatch_size=self.minibatch_size,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            clip_range=self.clip_range,
            ent_coef=self.ent_coef,
            vf_coef=self.vf_coef,
            max_grad_norm=self.max_grad_norm,
            net_arch=self.net_arch,
            log_std_init=self.log_std_init,
        )


MIN_UPDATES = 50
"""Rollouts a training gets at least, when the env count is chosen from the budget."""
ENV_CHOICES = (8, 16, 32, 64, 128)
"""Env counts chosen from: more envs step faster per env-step (the batched simulator and the
policy run once per batch), fewer give more updates on a small budget."""


def envs_for(timesteps: int, n_steps: int) -> int:
    """The most envs that still give ``MIN_UPDATES`` rollouts of ``n_steps`` on the budget."""
    fits = [n for n in ENV_CHOICES if n * n_steps * MIN_UPDATES <= timesteps]
    return max(fits, default=ENV_CHOICES[0])


def _device_name(name: str) -> str:
    """'cpu' or 'cuda'; 'auto' asks torch (imported only then)."""
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


@dataclass(eq=False)
class _Member:
    """One reward in a training: its worlds (rows of the batch), PPO and statistics."""

    rows: slice
    ppo: Any
    report: Report
    components: Any
    episodes: Any
    compute: Any = None
    names: list[str] = field(default_factory=list)
    error: BaseException | None = None
    """Why this reward stopped (it raised); it is then left out of the rest."""


class PPOTrainer(Trainer):
    """Lean torch PPO on a batched env: one candidate per process, or a group of them
    (``group``) on one batch."""

    Settings: ClassVar[type[BaseModel]] = PPOSettings
    resumable: ClassVar[bool] = True
    settings: PPOSettings

    def __init__(self, settings: PPOSettings) -> None:
        self.settings = settings
        self.last: Any = None
        """The :class:`~.ppo_core.PPO` of the last :meth:`train` (for tests)."""

    @property
    def n_envs(self) -> int:
        """The env count of the settings, or the largest one chosen from a budget."""
        return self.settings.n_envs or ENV_CHOICES[-1]

    def envs_for(self, timesteps: int) -> int:
        return self.settings.n_envs or envs_for(timesteps, self.settings.n_steps)

    @property
    def group(self) -> int:
        """Candidates per training process (:meth:`train_group`)."""
        return self.settings.group

    @property
    def resources(self) -> Resources:
        s = self.settings
        device = _device_name(s.device)
        cuda = device == "cuda"
        return Resources(
            threads=s.threads,
            device=device,
            memory_bytes=None if cuda or s.memory_gib is None else int(s.memory_gib * 1024**3),
            gpus=1.0 if cuda else 0.0,
        )

    def describe(self) -> dict[str, Any]:
        return ppo_description("PPO (eureka-lab's torch PPO on batched simulations)", self.settings)

    def train(
        self,
        task: Task,
        load_reward: Callable[..., RewardFn | None],
        budget: Budget,
        report: Report,
    ) -> TrainingReport:
        (outcome,) = self.train_group(task, [load_reward], budget, [report])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def train_group(
        self,
        task: Task,
        load_rewards: Sequence[Callable[..., RewardFn | None]],
        budget: Budget,
        reports: Sequence[Report],
    ) -> list[TrainingReport | BaseException]:
        """Train several rewards at once in this process: one batched env of
        ``len(load_rewards) * n_envs`` worlds, each reward with its own PPO on its own
        ``n_envs`` of them, stepped together. A reward that raises fails alone (its
        exception takes its place in the list); the others train on. Only a fresh start
        (``budget.resume`` None) trains more than one."""
        import torch

        from eureka_lab.reward.applied import ComponentStats, EpisodeTracker
        from eureka_lab.trainers.device_stats import DeviceComponentStats, DeviceEpisodeTracker
        from eureka_lab.trainers.ppo_core import PPO, ActionSpace

        if budget.resume is not None and len(load_rewards) != 1:
            raise ValueError("only one reward can continue a training (budget.resume)")
        s = self.settings
        torch.set_num_threads(s.threads)
        device = torch.device(_device_name(s.device))
        each = self.envs_for(budget.timesteps)
        env = self.make_env(task, each * len(load_rewards), device)
        n = env.num_envs
        space = ActionSpace.from_gym(env.action_space, device)
        obs_dim = int(np.prod(env.observation_space.shape))
        # A continued training draws new noise: seeded by where it starts.
        seed = budget.seed + budget.start

        # The numpy <-> torch boundary. A numpy batched env and its reward speak numpy; a
        # tensor env (MuJoCo Warp) and its reward speak torch on the device, and nothing
        # crosses but the statistics.
        def to_t(x: Any, dtype: Any = torch.float32) -> Any:
            return torch.as_tensor(x, device=device).reshape(len(x), -1).to(dtype)

        def as_np(x: Any) -> np.ndarray:
            return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

        tensors = env.tensors
        obs = env.reset(seed=seed)
        obs_t = to_t(obs)
        members = []
        for g, report in enumerate(reports):
            rows = slice(g * each, (g + 1) * each)
            ppo = PPO(
                obs_dim, space, each, s.config(), device, s.normalize_obs, s.normalize_reward, seed
            )
            if budget.resume is not None:
                ppo.load_state({k: torch.from_numpy(np.array(v)) for k, v in budget.resume.items()})
            elif ppo.obs_norm is not None:
                ppo.obs_norm.update(obs_t[rows])
                ppo.freeze_obs_norm()
            if tensors:  # statistics stay on the device until a checkpoint reads them
                member = _Member(
                    rows, ppo, report, DeviceComponentStats(), DeviceEpisodeTracker(each, device)
                )
            else:
                member = _Member(rows, ppo, report, ComponentStats(), EpisodeTracker(each))
            members.append(member)
        self.last = members[0].ppo
        for m, load_reward in zip(members, load_rewards, strict=True):
            try:
                m.compute = self.reward_computer(load_reward, device)
            except Exception as e:
                m.error = e

        per_rollout = each * s.n_steps
        planned = budget.start + -(-(budget.timesteps - budget.start) // per_rollout) * per_rollout
        started = time.monotonic()

        def checkpoint(m: _Member, step: int, last: bool = False) -> None:
            comps = m.components.snapshot()
            m.names[:] = sorted(set(m.names) | set(comps))
            stats = CheckpointStats(
                step=step,
                components=comps,
                seconds=round(time.monotonic() - started, 2),
                **m.episodes.snapshot(),
            )
            if last and budget.keep_state:
                state = {k: v.numpy() for k, v in m.ppo.state().items()}
                m.report(stats, self._arrays(m.ppo), state=state)
            else:
                m.report(stats, self._arrays(m.ppo))

        steps = budget.start
        while steps < planned and any(m.error is None for m in members):
            for _ in range(s.n_steps):
                acted = []
                for m in members:
                    nobs = m.ppo.normalize(obs_t[m.rows])
                    acted.append((nobs, *m.ppo.act(nobs)))
                action = torch.cat([a[1] for a in acted]) if len(members) > 1 else acted[0][1]
                env_action: torch.Tensor | np.ndarray = space.to_env(action)
                env_action = env_action.reshape(n) if space.discrete else env_action.reshape(n, -1)
                if not tensors:
                    env_action = as_np(env_action).reshape(n, *space.shape)
                step = env.step(env_action)
                done = step.terminated | step.truncated
                for m, (nobs, act, logp, value) in zip(members, acted, strict=True):
                    if m.error is not None:
                        continue
                    r = m.rows
                    try:
                        total, comps = m.compute.batched(
                            obs[r],
                            env_action[r],
                            step.reached[r],
                            {k: v[r] for k, v in step.info.items()},
                            step.reward[r],
                        )
                    except Exception as e:  # this reward fails; the others train on
                        m.error = e
                        continue
                    m.components.add(comps)
                    if tensors:
                        m.episodes.add(step.reward[r], total, done[r])
                    else:
                        m.episodes.add(
                            np.asarray(step.reward[r], np.float64), total, np.asarray(done[r], bool)
                        )
                    reward = m.ppo.shape_reward(
                        torch.as_tensor(total, device=device),
                        torch.as_tensor(step.terminated[r], device=device),
                        torch.as_tensor(step.truncated[r], device=device),
                        to_t(step.reached[r]),
                    )
                    m.ppo.buffer.add(
                        obs_t[r],
                        nobs,
                        act,
                        logp,
                        value,
                        reward,
                        torch.as_tensor(done[r], device=device),
                    )
                obs, obs_t = step.obs, to_t(step.obs)
                steps += each
                if steps < planned and budget.due(steps, steps - each):
                    for m in members:
                        if m.error is None:
                            checkpoint(m, steps)
            for m in members:
                if m.error is None:
                    m.ppo.update(m.ppo.normalize(obs_t[m.rows]))
        seconds = round(time.monotonic() - started, 2)
        outcomes: list[TrainingReport | BaseException] = []
        for m in members:
            if m.error is not None:
                outcomes.append(m.error)
                continue
            checkpoint(m, steps, last=True)
            outcomes.append(TrainingReport(steps=steps, seconds=seconds, components=m.names))
        env.close()
        return outcomes

    def make_env(self, task: Task, n_envs: int, device: Any) -> Any:
        """The batched env this trainer steps (numpy arrays here; a subclass may give one
        whose ``tensors`` attribute is True and which speaks torch on ``device``)."""
        from eureka_lab.batched import make_batched

        return make_batched(task, n_envs, self.settings.threads)

    def reward_computer(self, load_reward: Callable[..., RewardFn | None], device: Any) -> Any:
        """What applies the candidate's reward to a batched transition (confines the job)."""
        from eureka_lab.reward.applied import RewardComputer

        return RewardComputer(load_reward())

    @staticmethod
    def _arrays(ppo: Any) -> Arrays:
        arrays = {
            ACTOR_PREFIX + k: v.detach().cpu().numpy().astype(np.float32)
            for k, v in ppo.actor.state_dict().items()
        }
        if ppo.obs_norm is not None:
            mean, var = ppo.obs_norm.export()
            arrays[OBS_MEAN] = mean.cpu().numpy()
            arrays[OBS_VAR] = var.cpu().numpy()
        return arrays

    def policy(self, task: Task, arrays: Arrays) -> Act:
        import torch

        from eureka_lab.trainers.ppo_core import ActionSpace, Actor, normalize

        cpu = torch.device("cpu")
        env = task.make_env()
        space = ActionSpace.from_gym(env.action_space, cpu)
        obs_dim = int(np.prod(env.observation_space.shape))
        env.close()
        actor = Actor(obs_dim, space, self.settings.config())
        state = {
            k.removeprefix(ACTOR_PREFIX): torch.from_numpy(np.array(v, dtype=np.float32))
            for k, v in arrays.items()
            if k.startswith(ACTOR_PREFIX)
        }
        actor.load_state_dict(state, strict=True)
        actor.eval()
        stats = None
        if OBS_MEAN in arrays and OBS_VAR in arrays:
            stats = (
                torch.from_numpy(np.array(arrays[OBS_MEAN], dtype=np.float32)),
                torch.from_numpy(np.array(arrays[OBS_VAR], dtype=np.float32)),
            )

        @torch.no_grad()
        def act(obs: np.ndarray) -> np.ndarray:
            x = torch.as_tensor(np.asarray(obs).reshape(len(obs), -1))
            x = normalize(x, *stats) if stats is not None else x.float()
            a = actor.deterministic(x).numpy()
            return a if space.discrete else a.reshape(len(obs), *space.shape)

        return act
