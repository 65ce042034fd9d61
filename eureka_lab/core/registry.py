"""Name -> implementation registries for the seams (trainer, executor, selection,
feedback). Entries are ``"module:attr"`` strings imported on first use, so registering costs
nothing; the built-ins register exactly as a user's plugin would::

    from eureka_lab.trainers import TRAINERS
    TRAINERS.register("my_trainer", "my_package.trainer:MyTrainer")
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from eureka_lab.core.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Implementations of one seam, by name."""

    def __init__(self, kind: str, entries: dict[str, str | Any] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str | Any] = dict(entries or {})

    def register(self, name: str, target: str | Any) -> None:
        """Register ``target`` (an object, or ``"module:attr"`` imported on first use)."""
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Any:
        """The implementation registered as ``name``; ConfigError naming near matches."""
        if name not in self._entries:
            raise ConfigError(
                f"Unknown {self.kind} {name!r}."
                + did_you_mean(name, self._entries)
                + f" Choose one of: {', '.join(self.names())}."
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target
