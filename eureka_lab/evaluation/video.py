"""Rollout videos: a policy rolled out from a fixed seed and rendered headless (MuJoCo
offscreen through EGL, which works on CPU-only Linux through Mesa) into an H.264 mp4 that
browsers play. Runs in the evaluator, which never loads reward code."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eureka_lab.core.errors import ConfigError
from eureka_lab.task.model import Task


@dataclass(frozen=True)
class VideoSpec:
    """Length, size and frame rate of a rollout video."""

    steps: int = 200
    width: int = 320
    height: int = 240
    fps: int = 30


def can_render(task: Task) -> str | None:
    """None when the task's env renders ``rgb_array`` frames, else why not (with the fix)."""
    try:
        env = task.make_env(render_mode="rgb_array", width=16, height=16)
    except TypeError:  # envs without a size argument
        try:
            env = task.make_env(render_mode="rgb_array")
        except Exception as e:
            return f"{task.env_id} cannot render rgb_array frames ({type(e).__name__}: {e})"
    except Exception as e:
        return f"{task.env_id} cannot render rgb_array frames ({type(e).__name__}: {e})"
    try:
        env.reset(seed=0)
        frame = env.render()
    except Exception as e:
        return (
            f"{task.env_id} cannot render rgb_array frames ({type(e).__name__}: {e}); on a "
            "machine without a display install libegl1 libegl-mesa0 libgl1-mesa-dri and set "
            "MUJOCO_GL=egl"
        )
    finally:
        env.close()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        return f"{task.env_id} renders no rgb_array frames (got {type(frame).__name__})"
    return None


def record(
    task: Task, act: Callable[[np.ndarray], np.ndarray], seed: int, spec: VideoSpec
) -> bytes:
    """An mp4 (H.264, yuv420p) of the policy ``act`` from ``seed``, at most ``spec.steps``
    steps (a finished episode ends it)."""
    try:
        import imageio.v2 as iio
    except ImportError:
        raise ConfigError('Videos need imageio: pip install "eureka-lab[video]".') from None
    try:
        env = task.make_env(render_mode="rgb_array", width=spec.width, height=spec.height)
    except TypeError:
        env = task.make_env(render_mode="rgb_array")
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = iio.get_writer(
            path,
            fps=spec.fps,
            codec="libx264",
            quality=6,
            pixelformat="yuv420p",
            macro_block_size=8,
            ffmpeg_log_level="error",
        )
        try:
            obs, _ = env.reset(seed=seed)
            writer.append_data(env.render())
            for _ in range(spec.steps):
                action = act(np.asarray(obs)[None])[0]
                obs, _, terminated, truncated, _ = env.step(action)
                writer.append_data(env.render())
                if terminated or truncated:
                    break
        finally:
            writer.close()
            env.close()
        return Path(path).read_bytes()
    finally:
        Path(path).unlink(missing_ok=True)
