"""Model backends behind one seam (see :mod:`eureka_lab.backends.base`).

``make_backend("offline" | "scripted" | "openai" | "replay:RUN_DIR" | "manual", ...)``
builds one by name from :data:`BACKENDS`; the built-ins are announced in the entry-point
group ``eureka_lab.backends`` exactly as a plugin package announces its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eureka_lab.backends.base import Backend, Completion, Evidence, Message, Prompt, Usage
from eureka_lab.core.errors import BackendError, ConfigError
from eureka_lab.core.plugins import BACKENDS

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSettings",
    "Completion",
    "Evidence",
    "Message",
    "Prompt",
    "Usage",
    "default_backend_name",
    "make_backend",
]


@dataclass(frozen=True)
class BackendSettings:
    """Everything a backend may need; each backend reads the fields it uses."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 1.0
    max_tokens: int | None = None
    timeout: float = 120.0
    concurrency: int = 4
    max_retries: int = 5
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    """USD per million (prompt, completion) tokens, by model name; overrides built-ins."""
    max_cost: float | None = None
    seed: int = 0
    seeds: tuple[str, ...] = ()
    """Seed reward programs (source code), for LLM-free backends."""
    run_dir: Path | None = None
    """The run being written (manual mode writes prompts there)."""
    spent_usd: float = 0.0
    """Cost already spent by this run (on resume), counted against ``max_cost``."""
    interactive: bool = False


def default_backend_name(env: Mapping[str, str] | None = None) -> str:
    """'openai' when an endpoint is configured (OPENAI_API_KEY or OPENAI_BASE_URL), else
    'offline'."""
    env = os.environ if env is None else env
    return "openai" if env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL") else "offline"


def make_backend(spec: str, settings: BackendSettings) -> Backend:
    """Build a backend from ``name`` or ``name:argument`` (e.g. ``replay:runs/abc``)."""
    name, _, arg = spec.partition(":")
    try:
        cls: Any = BACKENDS.get(name)
    except ConfigError as e:
        raise BackendError(str(e)) from None
    backend: Backend = cls(settings, arg) if arg else cls(settings)
    return backend
