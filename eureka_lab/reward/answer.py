"""The parts of a model's answer: its ``<think>`` sections, its fenced blocks, and the answer
cut to the longest one the orchestrator reads. Each found in one pass over the answer, so an
answer of any shape costs time linear in its length."""

from __future__ import annotations

import re

from eureka_lab.core.bounds import MAX_ANSWER_CHARS

_CUT = f"\n\n[cut here: an answer may be at most {MAX_ANSWER_CHARS:,} characters long]\n"
_FENCE_OPENING = re.compile(r"[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)")
_THINK_TAG = re.compile(r"<(/?)(think|thinking)>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<(think|thinking)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(think|thinking)>", re.IGNORECASE)


def cut_answer(text: str) -> str:
    """The answer as the run keeps it (the request record, ``response.md``, the repair
    prompt): its first :data:`MAX_ANSWER_CHARS` characters and a line that says it was cut,
    which :func:`parse_response` refuses. Cutting a cut answer changes nothing."""
    if len(text) <= MAX_ANSWER_CHARS:
        return text
    return f"{text[:MAX_ANSWER_CHARS]}{_CUT}"


def split_thinking(text: str) -> tuple[str, str]:
    """Return (answer, thinking). Handles closed sections, a stray ``</think>`` whose opening
    tag the server ate, and an unclosed ``<think>`` (everything after it is thinking)."""
    thinking: list[str] = []
    kept: list[str] = []
    end = 0
    for start, stop in _closed_sections(text):
        kept += [text[end:start], "\n"]
        thinking.append(text[start:stop])
        end = stop
    kept.append(text[end:])
    answer = "".join(kept)
    close = _THINK_CLOSE.search(answer)
    if close:  # "...reasoning</think> answer": the opening tag is missing
        thinking.append(answer[: close.start()])
        answer = answer[close.end() :]
    opened = _THINK_OPEN.search(answer)
    if opened:  # "<think> reasoning..." never closed
        thinking.append(answer[opened.end() :])
        answer = answer[: opened.start()]
    return answer, _THINK_TAG.sub("\n", "\n".join(thinking))


def _closed_sections(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each ``<think>...</think>`` (or ``<thinking>...</thinking>``)
    section, in order: an opening tag and the first closing tag of its name after it; an
    opening tag with none is not a section. Tags are found once and paired from the end, so
    that an answer of unclosed tags costs linear time, not a scan of the rest of the answer
    for each tag."""
    tags = list(_THINK_TAG.finditer(text))
    partner: list[int | None] = [None] * len(tags)  # an opening tag's closing tag
    next_close: dict[str, int] = {}
    for i in reversed(range(len(tags))):
        closing, name = tags[i].group(1), tags[i].group(2).lower()
        if closing:
            next_close[name] = i
        else:
            partner[i] = next_close.get(name)
    sections = []
    i = 0
    while i < len(tags):
        close = partner[i]
        if close is None:
            i += 1
        else:
            sections.append((tags[i].start(), tags[close].end()))
            i = close + 1
    return sections


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order. A line of three or more backticks or
    tildes opens a block (indented or not, with a language or not) when a line follows it; a
    line of the same fence alone closes it, or the end of the text does. One pass over the
    lines: a pattern over the whole text would rescan the rest of it for every opening."""
    lines = text.split("\n")
    blocks = []
    i = 0
    while i < len(lines) - 1:
        opening = _FENCE_OPENING.match(lines[i])
        i += 1
        if opening is None:
            continue
        fence, start = opening.group("fence"), i
        while i < len(lines) and lines[i].strip(" \t") != fence:
            i += 1
        body = "\n".join(lines[start:i])
        if i < len(lines) and i > start:  # closed: the body's last line keeps its newline
            body += "\n"
        blocks.append((opening.group("lang").lower(), body))
        i += 1
    return blocks
