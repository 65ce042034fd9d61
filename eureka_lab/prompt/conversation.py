"""What a model is asked and what it answers: messages, prompts, completions, usage.

Plain data shared by the loop, the run store and the model backends (which depend on it,
never the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
