"""The MuJoCo tasks on MuJoCo Warp: thousands of worlds stepped on a GPU (or on Warp's CPU
device), as torch tensors that never leave the device.

:class:`WarpBatch` is :class:`~eureka_lab.batched.mujoco.MujocoBatch`'s twin: the same
Gymnasium-compiled model, the same :class:`~eureka_lab.batched.mujoco.Locomotion`
definitions (observation, reward, termination, ``info``) written over numpy's names on torch,
the same time limit and automatic resets. Warp computes in float32, so it equals Gymnasium
to float32 precision, not bit for bit (``tests/test_trainers_warp.py`` measures it). Reset
noise is drawn on the device with a torch generator: Gymnasium's distribution, not its
stream.

Warp compiles its kernels on first use (tens of seconds cold) into ``WARP_CACHE_PATH``
(default ``~/.cache/eureka-lab/warp``); a batch compiles and warms everything in its
constructor, before the job confines itself and loads reward code.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from eureka_lab.batched.base import Step
from eureka_lab.batched.mujoco import LOCOMOTION, MujocoBatch

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


class WarpBatch:
    """``num_envs`` worlds of one locomotion task on MuJoCo Warp; tensors in and out."""

    tensors = True
    supports = staticmethod(MujocoBatch.supports)

    def __init__(self, task: Any, num_envs: int, device: str | None = None) -> None:
        import torch

        wp = init_warp()
        import mujoco_warp as mjw

        from eureka_lab.reward.numpy_on_torch import make_numpy
        from eureka_lab.task.envs import quiet_known_mujoco_warnings

        self.definition = LOCOMOTION[task.env_id]
        self.kw = {**self.definition.defaults(), **task.env_kwargs}
        with quiet_known_mujoco_warnings():
            env = task.make_env()
        core = env.unwrapped
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.max_steps = int(env.spec.max_episode_steps) if env.spec else 1000
        self.frame_skip, self.dt = int(core.frame_skip), float(core.dt)
        self.wp_device = device or default_device()
        self.device = torch.device("cuda" if self.wp_device.startswith("cuda") else "cpu")
        self.xp = SimpleNamespace(**make_numpy(self.device)["numpy"])
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)  # noqa: E731
        self.init_qpos, self.init_qvel = as_t(core.init_qpos), as_t(core.init_qvel)
        self.num_envs = num_envs
        self.nq, self.nv = len(core.init_qpos), len(core.init_qvel)
        self._wp, self._mjw = wp, mjw
        with wp.ScopedDevice(self.wp_device):
            self.model = mjw.put_model(core.model)
            self.data = mjw.make_data(core.model, nworld=num_envs)
            self.qpos = wp.to_torch(self.data.qpos)
            self.qvel = wp.to_torch(self.data.qvel)
            self.ctrl = wp.to_torch(self.data.ctrl)
            self._mask = wp.zeros(num_envs, dtype=bool)
            self._mask_t = wp.to_torch(self._mask)
            # Compile and load every kernel now, before the job is confined.
            mjw.step(self.model, self.data)
            mjw.reset_data(self.model, self.data)
            wp.synchronize()
        env.close()
        # On a GPU, Warp launches on torch's stream: the two read and write the same memory
        # (zero-copy views), and one stream keeps their work in order without a host wait.
        self._stream = wp.stream_from_torch(self.device) if self.device.type == "cuda" else None
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.generator = torch.Generator(device=self.device)

    def _launching(self) -> Any:
        """Where Warp's kernels go: torch's stream on a GPU, Warp's CPU device otherwise."""
        if self._stream is not None:
            return self._wp.ScopedStream(self._stream)
        return self._wp.ScopedDevice(self.wp_device)

    def _restart(self, done: Any) -> None:
        """New episodes in the worlds where ``done`` (a bool tensor) holds."""
        import torch

        scale = float(self.kw["reset_noise_scale"])
        n, g = self.num_envs, self.generator
        self._mask_t.copy_(done)
        with self._launching():
            self._mjw.reset_data(self.model, self.data, reset=self._mask)
        uniform = lambda k: (torch.rand(n, k, generator=g, device=self.device) * 2 - 1) * scale  # noqa: E731
        dq = uniform(self.nq)
        if self.definition.qvel_noise == "normal":
            dv = torch.randn(n, self.nv, generator=g, device=self.device) * scale
        else:
            dv = uniform(self.nv)
        where = done[:, None]
        self.qpos.copy_(torch.where(where, self.init_qpos + dq, self.qpos))
        self.qvel.copy_(torch.where(where, self.init_qvel + dv, self.qvel))
        self.elapsed.masked_fill_(done, 0)

    def _observe(self) -> Any:
        return self.definition.observe(self.kw, self.qpos, self.qvel, self.xp)

    def reset(self, seed: int) -> Any:
        import torch

        self.generator.manual_seed(seed)
        self._restart(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self._observe().clone()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put every world in the given state (as Gymnasium's ``set_state``), for tests."""
        import torch

        self.qpos.copy_(torch.as_tensor(np.asarray(qpos), dtype=torch.float32))
        self.qvel.copy_(torch.as_tensor(np.asarray(qvel), dtype=torch.float32))

    def step(self, actions: Any) -> Step:
        import torch

        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        actions = actions.reshape(self.num_envs, -1)
        x_before = self.qpos[:, 0].clone()
        self.ctrl.copy_(actions)
        with self._launching():
            for _ in range(self.frame_skip):
                self._mjw.step(self.model, self.data)
        reached = self._observe().clone()
        reward, terminated, info = self.definition.outcome(
            self.kw, x_before, self.qpos, self.qvel, actions, self.dt, self.init_qpos, self.xp
        )
        self.elapsed += 1
        truncated = self.elapsed >= self.max_steps
        done = terminated | truncated
        obs = reached
        # On a GPU, a masked restart of no world is cheaper than waiting to see if any ended.
        if self.device.type != "cpu" or bool(done.any()):
            self._restart(done)
            obs = torch.where(done[:, None], self._observe(), reached)
        from eureka_lab.reward.contract import visible_info_key

        return Step(
            obs=obs,
            reached=reached,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            info={k: v for k, v in info.items() if visible_info_key(k)},
        )

    def close(self) -> None:
        self.data = self.model = None
