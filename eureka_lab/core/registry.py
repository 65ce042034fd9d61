"""Name -> implementation registries for the seams, filled from Python entry points.

Every implementation, the built-ins included, is announced by the package that ships it as
an entry point in a group named after the seam (``eureka_lab.trainers``,
``eureka_lab.executors``, ``eureka_lab.selectors``, ``eureka_lab.feedback``,
``eureka_lab.backends``), as Gymnasium and simonw/llm do. A package of your own does the
same in its ``pyproject.toml``::

    [project.entry-points."eureka_lab.trainers"]
    my_trainer = "my_package.trainer:MyTrainer"

and ``eureka-lab run ... --trainer my_trainer`` (or a task's ``trainer: {name:
my_trainer}``) finds it once the package is installed. Entries are ``"module:attr"``
strings imported on first use, so discovering them costs nothing. Code (tests, notebooks)
can also register directly: ``TRAINERS.register("mine", MyTrainer)``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any, Generic, TypeVar

from eureka_lab.core.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Implementations of one seam, by name: the entry points of ``group`` (None: none),
    and what was registered in this process (which wins over an entry point of the same
    name)."""

    def __init__(
        self, kind: str, group: str | None = None, entries: dict[str, str | T] | None = None
    ) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, str | T] = dict(entries or {})
        self._registered: set[str] = set(self._entries)
        self._discovered = group is None

    def register(self, name: str, target: str | T) -> None:
        """Register ``target`` (an object, or ``"module:attr"`` imported on first use)."""
        self._entries[name] = target
        self._registered.add(name)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for entry in importlib.metadata.entry_points(group=str(self.group)):
            if entry.name not in self._registered:
                self._entries[entry.name] = entry.value

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def get(self, name: str) -> T:
        """The implementation registered as ``name``; ConfigError naming near matches."""
        self._discover()
        if name not in self._entries:
            hint = (
                f" (no package announces it in the entry-point group {self.group!r}; "
                "is the package that ships it installed?)"
            )
            raise ConfigError(
                f"Unknown {self.kind} {name!r}."
                + (did_you_mean(name, self._entries) or hint)
                + f" Choose one of: {', '.join(self.names())}."
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._entries[name] = target = obj
        return target
