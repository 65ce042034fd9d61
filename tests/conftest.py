"""Shared fixtures: tiny tasks that train in about a second. The helpers they use live in
``support/`` (see tests/README.md)."""

from __future__ import annotations

import os

import pytest

from support.tasks import tiny_task_dict

os.environ.setdefault("MUJOCO_GL", "egl")


@pytest.fixture
def tiny_task():
    from eureka_lab.task.load import task_from_dict

    return task_from_dict(tiny_task_dict())
