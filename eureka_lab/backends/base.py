"""The model-backend seam: a model that returns K completions for a conversation.

Nothing outside ``eureka_lab.backends`` knows which backend is in use. A backend gets a
:class:`Prompt` (the messages, plus the structured evidence they were rendered from, which
only LLM-free backends read) and returns exactly ``n`` :class:`Completion` objects; a
sample that failed carries ``error`` instead of ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]
Purpose = Literal["sample", "repair"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class ScoredCode:
    """A reward program the loop has trained, with what training showed."""

    code: str
    fitness: float | None
    components: dict[str, list[float]] = field(default_factory=dict)
    """Mean of each reward component at each checkpoint."""


@dataclass(frozen=True)
class Evidence:
    """What the messages were rendered from, for backends that do not read prose."""

    iteration: int
    seeds: tuple[str, ...] = ()
    scored: tuple[ScoredCode, ...] = ()
    failed_code: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Prompt:
    messages: tuple[Message, ...]
    purpose: Purpose = "sample"
    iteration: int = 0
    evidence: Evidence | None = None
    key: str = ""
    """Stable identity of this request inside the run (e.g. 'iter_01/sample')."""


@dataclass(frozen=True)
class Completion:
    text: str | None
    usage: Usage = Usage()
    error: str | None = None
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@runtime_checkable
class Backend(Protocol):
    """Turns a conversation and ``n`` into ``n`` completions (failed ones carry ``error``)."""

    name: str

    def complete(self, prompt: Prompt, n: int) -> list[Completion]: ...
