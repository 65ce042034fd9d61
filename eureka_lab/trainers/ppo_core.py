"""A lean PPO in torch (CleanRL-style): networks, running normalisers, rollout buffer, update.

Everything here works on torch tensors on one ``device``; nothing here touches numpy or an
environment. The trainer (:mod:`eureka_lab.trainers.ppo`) is the only place where arrays
cross between numpy and torch, so a simulator that already gives torch tensors (on a GPU)
can drive the same core.

- Continuous (Box) actions: a Gaussian with a state-independent log std; the unclipped
  sample is stored (its log-prob is what the update uses) and :meth:`ActionSpace.to_env`
  clips it to the bounds for the env. Discrete actions: a categorical over logits.
- Separate actor and critic MLPs (tanh), orthogonal init (gain sqrt 2; 0.01 for the actor's
  output, 1 for the critic's), as in SB3 and CleanRL.
- GAE, clipped surrogate, value loss, entropy bonus, per-minibatch advantage normalisation,
  global grad-norm clipping, Adam (eps 1e-5).
- :class:`RunningNorm` for observations (VecNormalize's clip and epsilon) and
  :class:`ReturnNorm` for rewards (divided by the running std of the discounted return).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from gymnasium import spaces
from torch import nn

CLIP_OBS, NORM_EPSILON = 10.0, 1e-8
"""VecNormalize's defaults, used both when training and when evaluating."""
CLIP_REWARD = 10.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class PPOConfig:
    """The hyperparameters the core uses (the trainer's settings map onto these)."""

    n_steps: int = 64
    minibatch_size: int = 1024
    epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (64, 64)
    log_std_init: float = 0.0


@dataclass(frozen=True)
class ActionSpace:
    """One env's action space: ``n`` discrete actions, or a Box of ``shape`` in bounds."""

    discrete: bool
    n: int = 0
    shape: tuple[int, ...] = ()
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None

    @classmethod
    def from_gym(cls, space: spaces.Discrete | spaces.Box, device: torch.device) -> ActionSpace:
        if isinstance(space, spaces.Discrete):
            return cls(discrete=True, n=int(space.n))
        as_t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return cls(
            discrete=False, shape=tuple(space.shape), low=as_t(space.low), high=as_t(space.high)
        )

    @property
    def dim(self) -> int:
        """Width of the actor's output: logits, or the Gaussian's mean."""
        return self.n if self.discrete else math.prod(self.shape)

    def to_env(self, action: torch.Tensor) -> torch.Tensor:
        """What the env is given: the sample clipped to the bounds (or the index)."""
        if self.discrete:
            return action
        return torch.clamp(action, self.low, self.high)


def _mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(a, b)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """The policy: logits or a Gaussian mean from the normalised observation."""

    def __init__(self, obs_dim: int, space: ActionSpace, cfg: PPOConfig) -> None:
        super().__init__()
        self.space = space
        self.net = _mlp([obs_dim, *cfg.net_arch, space.dim], out_gain=0.01)
        if not space.discrete:
            self.log_std = nn.Parameter(torch.full((space.dim,), float(cfg.log_std_init)))

    def dist(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        out = self.net(obs)
        if self.space.discrete:
            return torch.distributions.Categorical(logits=out)
        return torch.distributions.Normal(out, self.log_std.exp().expand_as(out))

    def log_prob_entropy(
        self, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-prob of ``action`` and the entropy, per row. The Gaussian's are written out:
        ``torch.distributions`` validates and broadcasts on every call, which costs more than
        the arithmetic at these sizes."""
        if self.space.discrete:
            d = self.dist(obs)
            return d.log_prob(action), d.entropy()
        mean = self.net(obs)
        z = (action - mean) * torch.exp(-self.log_std)
        logp = (-0.5 * z.pow(2) - self.log_std - HALF_LOG_2PI).sum(-1)
        entropy = (0.5 + HALF_LOG_2PI + self.log_std).sum().expand(len(obs))
        return logp, entropy

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A stochastic action (unclipped) and its log-prob."""
        out = self.net(obs)
        if self.space.discrete:
            logp_all = torch.log_softmax(out, -1)
            action = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        std = self.log_std.exp()
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        action = out + std * noise
        logp = (-0.5 * noise.pow(2) - self.log_std - HALF_LOG_2PI).sum(-1)
        return action, logp

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The env action of the deterministic policy: argmax, or the mean clipped."""
        out = self.net(obs)
        if self.space.discrete:
            return out.argmax(-1)
        return self.space.to_env(out)


class RunningNorm(nn.Module):
    """Running mean and variance of observations (float64), merged batch by batch."""

    mean: torch.Tensor
    var: torch.Tensor

    def __init__(self, shape: tuple[int, ...], device: torch.device) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64, device=device))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64, device=device))
        self.count = 1e-4

    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        b_mean, b_var, b = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = b_mean - self.mean, self.count + b
        self.mean += delta * b / total
        m2 = self.var * self.count + b_var * b + delta.pow(2) * self.count * b / total
        self.var = m2 / total
        self.count = total

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance as float32: what training normalises with and reports."""
        return self.mean.float(), self.var.float()


def normalize(obs: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """The one normalisation, in float32, used in training and in evaluation alike."""
    return torch.clamp((obs.float() - mean) / torch.sqrt(var + NORM_EPSILON), -CLIP_OBS, CLIP_OBS)


def _norm_state(prefix: str, norm: RunningNorm) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}/mean": norm.mean,
        f"{prefix}/var": norm.var,
        f"{prefix}/count": torch.tensor([norm.count], dtype=torch.float64),
    }


def _load_norm(
    prefix: str, norm: RunningNorm, state: dict[str, torch.Tensor], device: torch.device
) -> None:
    norm.mean = state[f"{prefix}/mean"].to(device, torch.float64).reshape(norm.mean.shape)
    norm.var = state[f"{prefix}/var"].to(device, torch.float64).reshape(norm.var.shape)
    norm.count = float(state[f"{prefix}/count"].reshape(-1)[0])


class ReturnNorm:
    """Scales rewards by the running std of the discounted return (as VecNormalize does)."""

    def __init__(self, n_envs: int, gamma: float, device: torch.device) -> None:
        self.gamma = gamma
        self.ret = torch.zeros(n_envs, dtype=torch.float64, device=device)
        self.rms = RunningNorm((), device)

    def __call__(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        self.ret = self.ret * self.gamma + reward
        self.rms.update(self.ret)
        out = torch.clamp(
            reward / torch.sqrt(self.rms.var + NORM_EPSILON), -CLIP_REWARD, CLIP_REWARD
        )
        self.ret = torch.where(done, torch.zeros_like(self.ret), self.ret)
        return out.float()


class Rollout:
    """``n_steps`` batched transitions, kept on the device."""

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        obs_dim: int,
        space: ActionSpace,
        device: torch.device,
        keep_raw: bool,
    ) -> None:
        z = lambda *s, dtype=torch.float32: torch.zeros(  # noqa: E731
            (n_steps, n_envs, *s), dtype=dtype, device=device
        )
        self.obs = z(obs_dim)
        self.actions = z(dtype=torch.long) if space.discrete else z(space.dim)
        self.logp, self.values, self.rewards = z(), z(), z()
        self.dones = z()
        """1 where the episode ended at this step (terminated or truncated)."""
        self.raw = z(obs_dim) if keep_raw else None
        """The raw observations, for the observation normaliser."""
        self.t = 0

    def add(
        self,
        raw: torch.Tensor,
        obs: torch.Tensor,
        action: torch.Tensor,
        logp: torch.Tensor,
        value: torch.Tensor,
        reward: torch.Tensor,
        done: torch.Tensor,
    ) -> None:
        t = self.t
        if self.raw is not None:
            self.raw[t] = raw
        self.obs[t], self.actions[t], self.logp[t] = obs, action, logp
        self.values[t], self.rewards[t], self.dones[t] = value, reward, done
        self.t += 1

    @property
    def full(self) -> bool:
        return self.t == self.obs.shape[0]


class PPO:
    """Actor, critic, normalisers and optimiser for one training run."""

    def __init__(
        self,
        obs_dim: int,
        space: ActionSpace,
        n_envs: int,
        cfg: PPOConfig,
        device: torch.device,
        normalize_obs: bool,
        normalize_reward: bool,
        seed: int,
    ) -> None:
        torch.manual_seed(seed)
        self.cfg, self.space, self.device = cfg, space, device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.actor = Actor(obs_dim, space, cfg).to(device)
        self.critic = _mlp([obs_dim, *cfg.net_arch, 1], out_gain=1.0).to(device)
        params = list(self.actor.parameters()) + list(self.critic.parameters())
        self.optimizer = torch.optim.Adam(params, lr=cfg.learning_rate, eps=1e-5, fused=True)
        self.obs_norm = RunningNorm((obs_dim,), device) if normalize_obs else None
        self.reward_norm = ReturnNorm(n_envs, cfg.gamma, device) if normalize_reward else None
        self.buffer = Rollout(cfg.n_steps, n_envs, obs_dim, space, device, normalize_obs)
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self.freeze_obs_norm()

    def state(self) -> dict[str, torch.Tensor]:
        """Everything training continues from: networks, optimiser moments, normalisers
        (float tensors only, so the state travels as safetensors)."""
        out = {f"actor/{k}": v for k, v in self.actor.state_dict().items()}
        out |= {f"critic/{k}": v for k, v in self.critic.state_dict().items()}
        for i, st in self.optimizer.state_dict()["state"].items():
            for k, v in st.items():
                out[f"adam/{i}/{k}"] = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
        if self.obs_norm is not None:
            out |= _norm_state("obs_norm", self.obs_norm)
        if self.reward_norm is not None:
            out |= _norm_state("return_norm", self.reward_norm.rms)
            out["return_norm/ret"] = self.reward_norm.ret
        return {k: v.detach().to("cpu") for k, v in out.items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state` (KeyError or RuntimeError when it does not fit)."""
        dev = self.device
        pick = lambda prefix: {  # noqa: E731
            k.removeprefix(prefix): v.to(dev) for k, v in state.items() if k.startswith(prefix)
        }
        self.actor.load_state_dict(pick("actor/"), strict=True)
        self.critic.load_state_dict(pick("critic/"), strict=True)
        opt, adam = self.optimizer.state_dict(), pick("adam/")
        restored: dict[int, dict[str, torch.Tensor]] = {}
        for i, shape in enumerate(self._param_shapes()):
            if f"{i}/step" in adam:
                restored[i] = {
                    "step": adam[f"{i}/step"].reshape(()).float().cpu(),
                    "exp_avg": adam[f"{i}/exp_avg"].float().reshape(shape),
                    "exp_avg_sq": adam[f"{i}/exp_avg_sq"].float().reshape(shape),
                }
        self.optimizer.load_state_dict({"state": restored, "param_groups": opt["param_groups"]})
        if self.obs_norm is not None:
            _load_norm("obs_norm", self.obs_norm, state, dev)
        if self.reward_norm is not None:
            _load_norm("return_norm", self.reward_norm.rms, state, dev)
            ret = state["return_norm/ret"].to(dev)
            if ret.shape == self.reward_norm.ret.shape:
                self.reward_norm.ret = ret
        self.freeze_obs_norm()

    def _param_shapes(self) -> list[torch.Size]:
        return [p.shape for g in self.optimizer.param_groups for p in g["params"]]

    def freeze_obs_norm(self) -> None:
        """Fix the normalisation used until the next update (one rollout sees one)."""
        self._stats = self.obs_norm.export() if self.obs_norm is not None else None

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        if self._stats is None:
            return obs.float()
        return normalize(obs, *self._stats)

    @torch.no_grad()
    def act(self, nobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled action (unclipped), its log-prob and the value, from normalised obs."""
        action, logp = self.actor.sample(nobs, self.generator)
        return action, logp, self.critic(nobs).squeeze(-1)

    @torch.no_grad()
    def value(self, nobs: torch.Tensor) -> torch.Tensor:
        return self.critic(nobs).squeeze(-1)

    @torch.no_grad()
    def shape_reward(
        self,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        reached: torch.Tensor,
    ) -> torch.Tensor:
        """The reward PPO learns from: normalised if asked, plus ``gamma * V(reached)`` where
        the time limit (not a terminal state) ended the episode."""
        done = terminated | truncated
        r = self.reward_norm(reward, done) if self.reward_norm is not None else reward.float()
        cut = truncated & ~terminated
        # On a GPU, computing the values always is cheaper than waiting to see if any is cut.
        if reward.device.type != "cpu" or bool(cut.any()):
            r = r + self.cfg.gamma * torch.where(cut, self.value(self.normalize(reached)), 0.0)
        return r

    def update(self, last_nobs: torch.Tensor) -> dict[str, float]:
        """GAE over the full buffer, ``epochs`` passes of minibatch PPO, then the observation
        normaliser takes in this rollout's raw observations; the buffer is emptied."""
        cfg, buf = self.cfg, self.buffer
        with torch.no_grad():
            next_value = self.value(last_nobs)
            adv = torch.zeros_like(buf.rewards)
            gae = torch.zeros_like(next_value)
            for t in reversed(range(buf.t)):
                not_done = 1.0 - buf.dones[t]
                nv = next_value if t == buf.t - 1 else buf.values[t + 1]
                delta = buf.rewards[t] + cfg.gamma * nv * not_done - buf.values[t]
                gae = delta + cfg.gamma * cfg.gae_lambda * not_done * gae
                adv[t] = gae
            returns = adv + buf.values
        n = buf.t * buf.obs.shape[1]
        obs, actions = buf.obs[: buf.t].reshape(n, -1), buf.actions[: buf.t].reshape(n, -1)
        if self.space.discrete:
            actions = actions.squeeze(-1)
        logp_old, adv, returns = (x[: buf.t].reshape(n) for x in (buf.logp, adv, returns))
        size = min(cfg.minibatch_size, n)
        stats = torch.zeros(4, device=self.device)
        updates = 0
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for _ in range(cfg.epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for start in range(0, n - size + 1, size):
                idx = order[start : start + size]
                logp, entropy = self.actor.log_prob_entropy(obs[idx], actions[idx])
                ratio = (logp - logp_old[idx]).exp()
                a = adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range))
                pg_loss = pg.mean()
                v_loss = (self.critic(obs[idx]).squeeze(-1) - returns[idx]).pow(2).mean()
                ent = entropy.mean()
                loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    clipped = ((ratio - 1).abs() > cfg.clip_range).float().mean()
                    stats += torch.stack([pg_loss, v_loss, ent, clipped]).detach()
                updates += 1
        if self.obs_norm is not None and buf.raw is not None:
            self.obs_norm.update(buf.raw[: buf.t])
        self.freeze_obs_norm()
        buf.t = 0
        names = ("policy_loss", "value_loss", "entropy", "clip_fraction")
        return dict(zip(names, (stats / max(updates, 1)).tolist(), strict=True))
