"""Plugins by entry point: a third-party package, installed in a temporary folder with its own
``pyproject.toml``, ships a trainer and a selector; ``eureka-lab run`` uses both by name with
no edit to eureka-lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.plugins import SELECTORS, TRAINERS
from eureka_lab.core.registry import Registry

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-eureka-plugin"
version = "0.0.1"

[tool.setuptools]
py-modules = ["tiny_eureka_plugin"]

[project.entry-points."eureka_lab.trainers"]
constant = "tiny_eureka_plugin:ConstantTrainer"

[project.entry-points."eureka_lab.selectors"]
first_written = "tiny_eureka_plugin:FirstWritten"
"""

MODULE = '''
"""A trainer that learns nothing (it always pushes right) and a selector that prefers the
candidate written first: enough to show both are found and used."""

import numpy as np
from pydantic import BaseModel, ConfigDict

from eureka_lab.runs.records import CheckpointStats, TrainingReport
from eureka_lab.selectors.base import Selector
from eureka_lab.trainers.base import Resources, Trainer


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: int = 2


class ConstantTrainer(Trainer):
    Settings = Settings

    @property
    def n_envs(self):
        return 2

    @property
    def resources(self):
        return Resources(threads=1)

    def describe(self):
        return {"algorithm": "the constant trainer of tiny-eureka-plugin", "settings": {}}

    def train(self, task, load_reward, budget, report):
        reward = load_reward()
        obs = np.zeros((2, 2))
        _, comps = reward(obs, np.zeros(2, dtype=np.int64), obs, {}) if reward else ({}, {})
        stats = {c: {"mean": float(np.mean(v)), "min": 0.0, "max": 0.0} for c, v in comps.items()}
        policy = {"policy/action": np.array([self.settings.action], dtype=np.float32)}
        report(CheckpointStats(step=budget.timesteps, components=stats), policy)
        return TrainingReport(steps=budget.timesteps, seconds=0.01, components=sorted(comps))

    def policy(self, task, arrays):
        action = int(arrays["policy/action"][0])
        return lambda obs: np.full(len(obs), action, dtype=np.int64)


class FirstWritten(Selector):
    def rank(self, trained):
        ordered = sorted(trained, key=lambda t: (t.candidate.iteration, t.candidate.index))
        return [[t.id] for t in ordered]
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The package built and installed (``pip install --target``) into a folder of its own,
    which a process sees through ``PYTHONPATH``, as it would see a virtual environment's."""
    pytest.importorskip("setuptools")
    base = tmp_path_factory.mktemp("plugin")
    source, site = base / "src", base / "site"
    source.mkdir()
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "tiny_eureka_plugin.py").write_text(MODULE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(site.glob("tiny_eureka_plugin-*.dist-info/entry_points.txt"))
    return site


def test_a_packages_trainer_and_selector_run_by_name(plugin_site, tmp_path):
    eureka = Path(sys.executable).with_name("eureka-lab")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), env.get("PYTHONPATH")]))
    argv = [
        str(eureka), "run", "mountain_car", "--llm", "offline", "--trainer", "constant",
        "--selection", "first_written", "--iterations", "1", "--samples", "3",
        "--timesteps", "64", "--final-seeds", "1", "--workers", "2",
        "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["trainer"] == {"name": "constant", "settings": {}}
    assert config["loop"]["selection"] == "first_written"
    iteration = json.loads((run / "iter_00" / "iteration.json").read_text())
    trained = [cid for group in iteration["ranking"] for cid in group]
    assert len(trained) >= 2 and trained == sorted(trained)  # the plugin's order, not fitness
    assert (
        "the constant trainer of tiny-eureka-plugin"
        in (run / "llm" / "iter_00-sample.json").read_text()
    )
    result = json.loads((run / trained[0] / "result.json").read_text())
    assert result["status"] == "trained" and result["steps"] == 64


def test_an_unknown_name_says_where_plugins_come_from():
    with pytest.raises(ConfigError, match=r"Unknown trainer 'nope'.*eureka_lab\.trainers"):
        TRAINERS.get("nope")
    with pytest.raises(ConfigError, match=r"Did you mean 'fitness'"):
        SELECTORS.get("fitnes")


def test_built_ins_are_entry_points_like_any_plugin():
    registry = Registry("trainer", "eureka_lab.trainers")  # nothing registered in code
    assert {"sb3", "ppo", "warp"} <= set(registry.names())
    assert registry.get("ppo").__name__ == "PPOTrainer"
