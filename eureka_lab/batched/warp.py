"""The MuJoCo envs on MuJoCo Warp: thousands of worlds stepped on a GPU (or on Warp's CPU
device), as torch tensors that never leave the device.

:class:`WarpBatch` is :class:`~eureka_lab.batched.mujoco.MujocoBatch`'s twin: the same
Gymnasium-compiled model, the same definitions (:mod:`eureka_lab.batched.definition`:
observation, resets, reward, termination, ``info``) over numpy's names on torch, the same
time limit and automatic resets. The fields a definition reads are zero-copy views of
Warp's data; Warp computes the post-constraint ones after every step where a definition
reads them (``run_rne_postconstraint``). Warp computes in float32, so it equals Gymnasium to
float32 precision, not bit for bit (``tests/test_trainers_warp.py`` measures it). Reset noise is
drawn on the device with a torch generator: Gymnasium's distributions, not its stream.

Warp has no PGS solver: Humanoid and HumanoidStandup, whose models ask for it, run with
Newton, which solves the same constraints to convergence (on the C simulator, one step from
the same state differs from PGS's by at most 2e-5 in velocities and 0.03 in contact forces).

Warp compiles its kernels on first use (tens of seconds cold) into ``WARP_CACHE_PATH``
(default ``~/.cache/eureka-lab/warp``); a batch compiles and warms everything in its
constructor, before the job confines itself and loads reward code.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from eureka_lab.batched.base import Step, time_limit
from eureka_lab.batched.definition import POST_CONSTRAINT, STATE
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.batched.registry import build_definition

CACHE = Path.home() / ".cache" / "eureka-lab" / "warp"


def kernel_cache() -> str:
    """Warp's kernel cache: ``WARP_CACHE_PATH``, set to :data:`CACHE` where unset, so that
    jobs (whose home is a scratch folder) inherit the orchestrator's."""
    path = os.environ.setdefault("WARP_CACHE_PATH", str(CACHE))
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def init_warp() -> Any:
    """Import and initialise Warp quietly, its kernel cache in a known folder; once per
    process (Warp resolves the folder to a per-version one at its start: setting it again
    afterwards would start a second, cold cache)."""
    cache = kernel_cache()
    import warp as wp

    wp.config.log_level = logging.WARNING  # no banner, no line per kernel module loaded
    wp.config.kernel_cache_dir = cache
    wp.init()
    return wp


def default_device() -> str:
    """``cuda`` where both Warp and torch see a GPU (a CPU build of torch on a GPU machine
    does not), else Warp's ``cpu`` device."""
    import torch

    cuda = init_warp().get_cuda_device_count() > 0 and torch.cuda.is_available()
    return "cuda" if cuda else "cpu"


def torch_numpy(device: Any) -> SimpleNamespace:
    """numpy's names over torch on ``device``, ``linalg`` included: definitions' ``xp``."""
    from eureka_lab.reward.numpy_on_torch import make_numpy

    names = make_numpy(device)
    return SimpleNamespace(**names["numpy"], linalg=SimpleNamespace(**names["linalg"]))


class _WorldDraws:
    """Every world's reset draws, on the device from one torch generator; only the
    restarting worlds (``rows``) wait for a value a rejection loop accepts."""

    def __init__(self, generator: Any, rows: Any, device: Any) -> None:
        self.generator, self.rows, self.device = generator, rows, device

    def uniform(self, low: float, high: float, size: int) -> Any:
        import torch

        g, n = self.generator, len(self.rows)
        return low + (high - low) * torch.rand(n, size, generator=g, device=self.device)

    def standard_normal(self, size: int) -> Any:
        import torch

        g, n = self.generator, len(self.rows)
        return torch.randn(n, size, generator=g, device=self.device)

    def until(self, sample: Callable[[], Any], accept: Callable[[Any], Any]) -> Any:
        import torch

        value = sample()
        pending = self.rows & ~accept(value)
        while bool(pending.any()):
            value = torch.where(pending[:, None], sample(), value)
            pending = pending & ~accept(value)
        return value


def _rows(mask: Any, like: Any) -> Any:
    """(n,) ``mask`` shaped to broadcast over ``like`` (n, ...)."""
    return mask.reshape(-1, *([1] * (like.ndim - 1)))


class WarpBatch:
    """``num_envs`` worlds of one env on MuJoCo Warp; tensors in and out."""

    tensors = True
    supports = staticmethod(MujocoBatch.supports)

    def __init__(self, task: Any, num_envs: int, device: str | None = None) -> None:
        import mujoco
        import torch

        wp = init_warp()
        import mujoco_warp as mjw

        self.wp_device = device or default_device()
        self.device = torch.device("cuda" if self.wp_device.startswith("cuda") else "cpu")
        self.definition, env = build_definition(task, torch_numpy(self.device))
        core, needs = env.unwrapped, self.definition.needs
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.max_steps = time_limit(env)
        self.frame_skip = int(core.frame_skip)
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)  # noqa: E731
        self.init_qpos, self.init_qvel = as_t(core.init_qpos), as_t(core.init_qvel)
        self.num_envs = num_envs
        model = core.model
        if model.opt.solver == mujoco.mjtSolver.mjSOL_PGS:
            model = copy.copy(model)
            model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
        self._derived = [name for name in needs if name not in STATE]
        self._wp, self._mjw = wp, mjw
        with wp.ScopedDevice(self.wp_device):
            self.model = mjw.put_model(model)
            self.model.opt.run_rne_postconstraint = bool(POST_CONSTRAINT.intersection(needs))
            self.data = mjw.make_data(model, nworld=num_envs)
            self.qpos = wp.to_torch(self.data.qpos)
            self.qvel = wp.to_torch(self.data.qvel)
            self.ctrl = wp.to_torch(self.data.ctrl)
            self.sim = SimpleNamespace(
                **{name: wp.to_torch(getattr(self.data, name)) for name in needs}
            )
            self._mask = wp.zeros(num_envs, dtype=bool)
            self._mask_t = wp.to_torch(self._mask)
            # Compile and load every kernel now, before the job is confined.
            mjw.step(self.model, self.data)
            mjw.forward(self.model, self.data)
            mjw.reset_data(self.model, self.data)
            wp.synchronize()
        env.close()
        # On a GPU, Warp launches on torch's stream: the two read and write the same memory
        # (zero-copy views), and one stream keeps their work in order without a host wait.
        self._stream = wp.stream_from_torch(self.device) if self.device.type == "cuda" else None
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.generator = torch.Generator(device=self.device)
        self.info: dict[str, Any] = {}
        """Every key of the env's ``info`` at the last step, the reward terms reward code
        does not see included (:attr:`Step.info` holds the visible ones)."""

    def _launching(self) -> Any:
        """Where Warp's kernels go: torch's stream on a GPU, Warp's CPU device otherwise."""
        if self._stream is not None:
            return self._wp.ScopedStream(self._stream)
        return self._wp.ScopedDevice(self.wp_device)

    def _restart(self, done: Any) -> None:
        """New episodes in the worlds where ``done`` (a bool tensor) holds, as Gymnasium's
        ``reset`` starts them: where the definition reads derived fields, they are
        recomputed there (``mj_forward``) and kept elsewhere, as steps left them."""
        import torch

        n = self.num_envs
        self._mask_t.copy_(done)
        with self._launching():
            self._mjw.reset_data(self.model, self.data, reset=self._mask)
        start = self.init_qpos.expand(n, -1).clone(), self.init_qvel.expand(n, -1).clone()
        qpos, qvel = self.definition.reset(_WorldDraws(self.generator, done, self.device), *start)
        self.qpos.copy_(torch.where(done[:, None], qpos, self.qpos))
        self.qvel.copy_(torch.where(done[:, None], qvel, self.qvel))
        if self._derived:
            kept = {name: getattr(self.sim, name).clone() for name in self._derived}
            with self._launching():
                self._mjw.forward(self.model, self.data)
            for name, old in kept.items():
                field = getattr(self.sim, name)
                new = torch.zeros_like(field) if name in POST_CONSTRAINT else field
                field.copy_(torch.where(_rows(done, field), new, old))
        self.elapsed.masked_fill_(done, 0)

    def _observe(self) -> Any:
        return self.definition.observe(self.sim)

    def reset(self, seed: int) -> Any:
        import torch

        self.generator.manual_seed(seed)
        self._restart(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self._observe().clone()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put every world in the given state (its positions and velocities; the fields
        derived from them stay as the last step left them), for tests."""
        import torch

        self.qpos.copy_(torch.as_tensor(np.asarray(qpos), dtype=torch.float32))
        self.qvel.copy_(torch.as_tensor(np.asarray(qvel), dtype=torch.float32))

    def step(self, actions: Any) -> Step:
        import torch

        from eureka_lab.reward.contract import visible_info_key

        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        actions = actions.reshape(self.num_envs, -1)
        before = self.definition.before(self.sim)
        before = None if before is None else before.clone()
        self.ctrl.copy_(actions)
        with self._launching():
            for _ in range(self.frame_skip):
                self._mjw.step(self.model, self.data)
        reached = self._observe().clone()
        reward, terminated, info = self.definition.outcome(self.sim, before, actions)
        # Copies, before restarts change the worlds they may view.
        reward, terminated = reward.clone(), terminated.clone()
        self.info = {k: v.clone() for k, v in info.items()}
        self.elapsed += 1
        truncated = self.elapsed >= self.max_steps
        done = terminated | truncated
        obs = reached
        # On a GPU, a masked restart of no world is cheaper than waiting to see if any ended.
        if self.device.type != "cpu" or bool(done.any()):
            self._restart(done)
            obs = torch.where(done[:, None], self._observe(), reached)
        return Step(
            obs=obs,
            reached=reached,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info={k: v for k, v in self.info.items() if visible_info_key(k)},
        )

    def close(self) -> None:
        self.data = self.model = None
