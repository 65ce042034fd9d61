"""Rollout videos rendered headless in the evaluator: H.264 mp4 files in the run store,
known to show, load_run and the report; an env that cannot render is refused clearly."""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("imageio_ffmpeg")

from eureka_lab import load_run  # noqa: E402
from eureka_lab.backends.scripted import ScriptedBackend  # noqa: E402
from eureka_lab.core.errors import ConfigError  # noqa: E402
from eureka_lab.loop.loop import Loop  # noqa: E402
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore  # noqa: E402
from eureka_lab.task.load import task_from_dict  # noqa: E402

from support.tasks import tiny_task_dict  # noqa: E402

pytestmark = pytest.mark.slow

BALANCE = """```python
import numpy as np


def compute_reward(obs, action, next_obs, info):
    upright = 1.0 - np.abs(next_obs[:, 1])
    return upright, {"upright": upright}
```"""


def _probe(path) -> str:
    import imageio_ffmpeg

    out = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path)], capture_output=True, text=True
    )
    return out.stderr


def test_each_trained_candidate_gets_a_playable_video(tmp_path):
    task = task_from_dict(
        tiny_task_dict(name="pole", env_id="InvertedPendulum-v5", description="balance")
    )
    store = RunStore.create(tmp_path, "video", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=1,
        samples=1,
        workers=2,
        final_seeds=1,
        videos=True,
        video_steps=40,
        video_size=(160, 120),
        video_fps=20,
    )
    Loop(store, task, config, ScriptedBackend(responses=[BALANCE])).run()
    run = load_run(store.root)
    cand = run.candidate("iter_00/cand_00")
    assert cand.video_path is not None
    info = _probe(cand.video_path)
    assert "Video: h264" in info and "160x120" in info and "yuv420p" in info
    assert "Duration: 00:00:00.00" not in info
    # The final comparison has one video per reward (its first seed).
    for name in ("best", "human", "sparse"):
        assert store.video_path(f"final/{name}/seed_1000") is not None
    assert any(e["event"] == "video" for e in store.events())


def test_an_env_that_cannot_render_is_refused_before_anything_runs(tmp_path):
    from support.tasks import tiny_task_dict as raw

    task = task_from_dict(raw(env_id="support.custom_envs:ReachEnv", description="d"))
    store = RunStore.create(tmp_path, "video", {})
    with pytest.raises(ConfigError, match="cannot render rgb_array frames.*leave out --videos"):
        Loop(store, task, LoopConfig(videos=True), ScriptedBackend())
