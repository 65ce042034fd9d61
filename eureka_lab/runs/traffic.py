"""The run store's record of model traffic: each request under ``llm/<key>.json`` (the
messages sent, the completions received, their usage), read back for replay and resume,
and the run's token and cost total. Part of :class:`~eureka_lab.runs.store.RunStore`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from eureka_lab.core.files import write_json
from eureka_lab.prompt.conversation import Completion, Prompt, Usage
from eureka_lab.runs.formats import REQUEST, completion_from_dict, completion_to_dict, schema

T = TypeVar("T")


class ModelTraffic:
    """Model requests of a run (mixed into the run store, which gives ``root`` and
    ``_load``)."""

    root: Path
    _load: Callable[..., Any]

    def llm_rel(self, key: str) -> str:
        return f"llm/{key.replace('/', '-')}.json"

    def save_request(
        self,
        prompt: Prompt,
        n: int,
        completions: list[Completion],
        backend: str,
        failed: bool = False,
    ) -> None:
        """Record a request. A ``failed`` one (no usable answer) is kept for the record under
        another name, so that resuming asks again."""
        rel = self.llm_rel(prompt.key)
        if failed:
            rel = rel.removesuffix(".json") + f".failed-{time.time_ns()}.json"
        write_json(
            self.root / rel,
            {
                "key": prompt.key,
                "purpose": prompt.purpose,
                "iteration": prompt.iteration,
                "n": n,
                "backend": backend,
                "messages": [m.to_dict() for m in prompt.messages],
                "completions": [completion_to_dict(c) for c in completions],
            },
        )

    def load_request(self, key: str) -> list[Completion] | None:
        record = self.request(key)
        if record is None:
            return None
        return [completion_from_dict(dict(c)) for c in record["completions"]]

    def request(self, key: str) -> dict[str, Any] | None:
        """One recorded request: messages sent, completions received (see save_request),
        checked against its schema."""
        record = self._load(self.llm_rel(key), schema("request", REQUEST))
        return None if record is None else dict(record)

    def requests(self, include_failed: bool = False) -> list[dict[str, Any]]:
        """Recorded requests; those that got no usable answer only with include_failed."""
        folder = self.root / "llm"
        if not folder.is_dir():
            return []
        names = sorted(p.name for p in folder.glob("*.json"))
        records = (
            self._load(f"llm/{name}", schema("request", REQUEST))
            for name in names
            if include_failed or ".failed-" not in name
        )
        return [dict(r) for r in records if r is not None]

    def usage(self) -> Usage:
        """Tokens and cost of every request of the run, failed ones included."""
        total = Usage()
        for record in self.requests(include_failed=True):
            for c in record["completions"]:
                total = total + Usage(**c.get("usage", {}))
        return total
