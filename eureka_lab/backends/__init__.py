"""Model backends behind one seam (see :mod:`eureka_lab.backends.base`).

``make_backend("offline" | "scripted" | "openai" | "replay:RUN_DIR" | "manual", ...)``
builds one by name; the built-ins use the same registry a plugin would.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eureka_lab.backends.base import Backend, Completion, Evidence, Message, Prompt, Usage
from eureka_lab.core.errors import BackendError, did_you_mean

__all__ = [
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


REGISTRY: dict[str, str] = {
    "offline": "eureka_lab.backends.offline:OfflineBackend",
    "scripted": "eureka_lab.backends.scripted:ScriptedBackend",
    "openai": "eureka_lab.backends.openai_compat:OpenAIBackend",
    "replay": "eureka_lab.backends.replay:ReplayBackend",
    "manual": "eureka_lab.backends.manual:ManualBackend",
}


def default_backend_name(env: dict[str, str] | None = None) -> str:
    """'openai' when an endpoint is configured (OPENAI_API_KEY or OPENAI_BASE_URL), else
    'offline'."""
    env = os.environ if env is None else env
    return "openai" if env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL") else "offline"


def make_backend(spec: str, settings: BackendSettings) -> Backend:
    """Build a backend from ``name`` or ``name:argument`` (e.g. ``replay:runs/abc``)."""
    name, _, arg = spec.partition(":")
    if name not in REGISTRY:
        raise BackendError(
            f"Unknown backend {name!r}."
            + did_you_mean(name, REGISTRY)
            + f" Choose one of: {', '.join(REGISTRY)}."
        )
    module, _, attr = REGISTRY[name].partition(":")
    cls: Any = getattr(importlib.import_module(module), attr)
    return cls(settings, arg) if arg else cls(settings)
