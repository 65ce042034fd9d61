"""A backend that answers from a queue of canned responses: for tests and demos."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from eureka_lab.backends.base import Completion, Prompt, Usage


class ScriptedBackend:
    """Pops one queued response per requested sample; records every prompt it gets.

    A queued ``Exception`` instance becomes a failed sample with that error.
    """

    name = "scripted"

    def __init__(self, settings: object = None, responses: Iterable[str | Exception] = ()) -> None:
        self.queue: deque[str | Exception] = deque(responses)
        self.prompts: list[Prompt] = []

    def push(self, *responses: str | Exception) -> None:
        self.queue.extend(responses)

    def complete(self, prompt: Prompt, n: int) -> list[Completion]:
        self.prompts.append(prompt)
        out = []
        for _ in range(n):
            if not self.queue:
                out.append(Completion(None, error="scripted backend: no response queued"))
                continue
            item = self.queue.popleft()
            if isinstance(item, Exception):
                out.append(Completion(None, error=str(item)))
            else:
                tokens = len(item) // 4
                out.append(Completion(item, usage=Usage(0, tokens), model="scripted"))
        return out
