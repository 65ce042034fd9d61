"""An env id given as the task, through the ``eureka-lab`` command and a real OpenAI-protocol
server: ``eureka-lab run Walker2d-v5 --description "walk backwards"`` trains with the
default trainer on a CPU-only machine (ppo) on Walker2d's batched form, stepped in C."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from eureka_lab.backends.openai_compat import OpenAIBackend
from eureka_lab.batched import make_batched
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.cli import main
from eureka_lab.task.load import task_from_dict

from support.fake_openai import FakeOpenAI

BACKWARDS = """\
Idea: pay for backward speed while the walker stays up.

```python
import numpy as np


def compute_reward(obs, action, next_obs, info):
    backward = -next_obs[:, 8]
    upright = (next_obs[:, 0] > 0.8).astype(np.float64)
    components = {"backward": 1.0 * backward, "upright": 0.5 * upright}
    total = sum(components.values())
    return total, components
```
"""


def cli(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_an_env_id_runs_on_the_batched_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(OpenAIBackend, "backoff_base", 0.001)
    monkeypatch.setattr("eureka_lab.trainers.default.cuda_available", lambda: False)
    runs = tmp_path / "runs"
    with FakeOpenAI(lambda body, i: BACKWARDS) as server:
        rc, out, err = cli(
            "run", "Walker2d-v5", "--description", "walk backwards",
            "--iterations", "1", "--samples", "2", "--timesteps", "4096",
            "--final-seeds", "1", "--workers", "2", "--runs-dir", runs,
            "--llm", "openai", "--base-url", server.url, "--model", "gpt-4o-mini",
        )  # fmt: skip
    assert rc == 0, out + err
    assert "trainer: ppo (the default" in out + err
    (run,) = [p for p in runs.iterdir() if (p / "config.json").is_file()]
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["trainer"]["name"] == "ppo"
    results = [json.loads(p.read_text()) for p in sorted(run.glob("iter_00/cand_*/result.json"))]
    assert results and all(r["status"] == "trained" and r["steps"] >= 4096 for r in results)
    env = make_batched(task_from_dict(config["task"]), 2)
    assert isinstance(env, MujocoBatch)  # the run's own task: Walker2d's form, in C
