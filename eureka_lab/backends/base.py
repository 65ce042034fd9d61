"""The model-backend seam: a model that returns K completions for a conversation.

Nothing outside ``eureka_lab.backends`` knows which backend is in use. A backend gets a
:class:`Prompt` (the messages, plus the structured evidence they were rendered from, which
only LLM-free backends read) and returns exactly ``n`` :class:`Completion` objects; a
sample that failed carries ``error`` instead of ``text``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from eureka_lab.prompt.conversation import (
    Completion,
    Evidence,
    Message,
    Prompt,
    Purpose,
    Role,
    ScoredCode,
    Usage,
)

__all__ = [
    "Backend",
    "Completion",
    "Evidence",
    "Message",
    "Prompt",
    "Purpose",
    "Role",
    "ScoredCode",
    "Usage",
]


@runtime_checkable
class Backend(Protocol):
    """Turns a conversation and ``n`` into ``n`` completions (failed ones carry ``error``)."""

    name: str

    def complete(self, prompt: Prompt, n: int) -> list[Completion]: ...
