"""How each file of a run folder is read back: parsed with its schema, or checked for its
type (records, rankings, videos, policies, text); and the records of the model traffic.
The run store (:mod:`.store`) opens the files; this module says what is in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, Required, TypeVar

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # the one pydantic reads on Python 3.11

from eureka_lab.core.errors import RunError
from eureka_lab.core.files import looks_like_mp4, parse_json, read_inside
from eureka_lab.prompt.conversation import Completion, Message, Usage
from eureka_lab.runs.records import Checkpoint, Ranking

T = TypeVar("T")


def parsed(root: Path, rel: str, parse: Callable[[bytes], T], limit: int) -> T | None:
    """``parse`` of the file ``rel`` beneath ``root``, None where it is absent. RunError
    naming the file where it is not a regular file inside ``root`` reached through no link,
    is over ``limit`` bytes, or is not what ``parse`` accepts (it raises ValueError)."""
    data = read_inside(root, rel, limit)
    if data is None:
        return None
    try:
        return parse(data)
    except ValueError as e:
        raise RunError(f"{root / rel} {e}; delete it to redo that step.") from None


def schema(name: str, validate: Callable[[Any], T]) -> Callable[[bytes], T]:
    """A parser of JSON into the record ``validate`` makes (ValueError saying why not)."""

    def parse(data: bytes) -> T:
        try:
            return validate(parse_json(data))
        except ValidationError as e:
            raise ValueError(
                f"does not hold a valid {name} record ({e.error_count()} problems, first: "
                f"{e.errors()[0]['msg']})"
            ) from None

    return parse


CHECKPOINT_LIST = TypeAdapter(list[Checkpoint]).validate_python


class UsageRecord(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class CompletionRecord(TypedDict, total=False):
    text: str | None
    error: str | None
    model: str
    usage: UsageRecord
    meta: dict[str, Any]


class MessageRecord(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class RequestRecord(TypedDict, total=False):
    """What :meth:`RunStore.save_request` writes, as its readers use it."""

    key: str
    purpose: str
    iteration: int
    n: int
    backend: str
    messages: Required[list[MessageRecord]]
    completions: Required[list[CompletionRecord]]


REQUEST = TypeAdapter(RequestRecord).validate_python


def as_text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise ValueError(f"is not UTF-8 text ({e.reason} at byte {e.start})") from None


def as_rankings(data: bytes) -> list[Ranking]:
    """Rankings, one a line; a torn line (a writer killed mid-append) is skipped."""
    out = []
    for line in data.splitlines():
        try:
            out.append(Ranking.model_validate_json(line))
        except ValidationError:
            continue
    return out


def as_mp4(data: bytes) -> bytes:
    if not looks_like_mp4(data):
        raise ValueError("is not an mp4 video (no 'ftyp' box at its start)")
    return data


def as_safetensors(data: bytes) -> bytes:
    from safetensors.numpy import load

    try:
        load(data)
    except Exception as e:  # whatever the parser raises, the file does not parse
        raise ValueError(f"is not a safetensors file ({type(e).__name__}: {e})") from None
    return data


def completion_to_dict(c: Completion) -> dict[str, Any]:
    return {
        "text": c.text,
        "error": c.error,
        "model": c.model,
        "usage": asdict(c.usage),
        "meta": c.meta,
    }


def completion_from_dict(d: dict[str, Any]) -> Completion:
    return Completion(
        text=d.get("text"),
        error=d.get("error"),
        model=d.get("model", ""),
        usage=Usage(**d.get("usage", {})),
        meta=d.get("meta", {}),
    )


def messages_from_dicts(items: list[dict[str, str]]) -> tuple[Message, ...]:
    return tuple(Message(m["role"], m["content"]) for m in items)  # type: ignore[arg-type]  # roles as stored, shown unchecked
