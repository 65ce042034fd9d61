"""The journal every collaborator of the loop writes through: the run store (records) and
the stream of events (the event log, and the reporter that shows progress)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eureka_lab.runs.store import RunStore

Reporter = Callable[[dict[str, Any]], None]
"""Receives every event the run records, and progress that is only shown."""


class Journal:
    """A run's store and its reporter."""

    def __init__(self, store: RunStore, reporter: Reporter | None = None) -> None:
        self.store = store
        self.reporter = reporter

    def emit(self, kind: str, **fields: Any) -> None:
        """Record an event in the run's log and show it."""
        record = self.store.event(kind, **fields)
        if self.reporter is not None:
            self.reporter(record)

    def show(self, kind: str, **fields: Any) -> None:
        """Show something that is not recorded (progress, a URL carrying a token)."""
        if self.reporter is not None:
            self.reporter({"event": kind, **fields})
