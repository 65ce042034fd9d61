"""The seams' registries, one per entry-point group (see :mod:`eureka_lab.core.registry`).

They live here, below every seam, so that anything can look an implementation up by name
(a task file validating its trainer's settings, the CLI listing the choices) without
importing the seam's package; each seam's package re-exports its own.
"""

from __future__ import annotations

from typing import Any

from eureka_lab.core.registry import Registry

TRAINERS: Registry[Any] = Registry("trainer", "eureka_lab.trainers")
"""Trainers (``eureka_lab.trainers.base.Trainer`` classes), chosen by a task's ``trainer``
block or ``--trainer``."""
EXECUTORS: Registry[Any] = Registry("executor", "eureka_lab.executors")
"""Executors (``eureka_lab.executors.base.Executor`` factories), chosen by ``--executor``."""
SELECTORS: Registry[Any] = Registry("selection mode", "eureka_lab.selectors")
"""Selectors (``eureka_lab.selectors.base.Selector`` classes), chosen by ``--selection``."""
FEEDBACK: Registry[Any] = Registry("feedback mode", "eureka_lab.feedback")
"""Feedback modes (``eureka_lab.feedback.base.Feedback`` classes), chosen by ``--feedback``."""
BACKENDS: Registry[Any] = Registry("backend", "eureka_lab.backends")
"""Model backends (``eureka_lab.backends.base.Backend`` classes), chosen by ``--llm``."""
