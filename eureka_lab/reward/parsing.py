"""Pull the reward program out of a model's answer.

Models wrap code in prose, split it over several fenced blocks, think aloud in
``<think>`` sections, forget the fences, or indent with tabs. :func:`parse_response`
finds the block that defines ``compute_reward``, merges the earlier blocks that define
what it uses, and says in ``reason`` what it took and why (or why it found nothing).
It only ever returns code that ``ast.parse``s and defines ``compute_reward``; whether that
code is *allowed* is :mod:`eureka_lab.reward.check`'s question.
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from dataclasses import dataclass

from eureka_lab.core import ast_tools
from eureka_lab.reward.contract import FUNCTION_NAME

__all__ = ["ParseResult", "code_digest", "parse_response"]

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.DOTALL | re.MULTILINE,
)
_THINK_CLOSED = re.compile(r"<(think|thinking)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<(think|thinking)>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(think|thinking)>", re.IGNORECASE)
_DEF_LINE = re.compile(rf"^(?P<indent>[ \t]*)def\s+{FUNCTION_NAME}\s*\(", re.MULTILINE)
_NOT_PYTHON = {"bash", "sh", "shell", "console", "json", "yaml", "text", "txt", "markdown", "md"}

# Modules the reward contract lets code import, and the import to add when code uses the
# conventional name without importing it (prompts often say "numpy is imported as np").
_IMPLIED_IMPORTS = {"np": "import numpy as np", "math": "import math"}


@dataclass(frozen=True)
class ParseResult:
    """What :func:`parse_response` took from an answer."""

    code: str | None
    """The reward program (parses, defines ``compute_reward``), or None."""
    reason: str
    """What was taken and why, or why nothing was; meant for logs and for the model."""


def parse_response(text: str) -> ParseResult:
    """Extract the reward program from a model's answer; see the module docstring."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    answer, thinking = _split_thinking(text)
    result = _parse_part(answer)
    if result.code is None and thinking:
        inner = _parse_part(thinking)
        if inner.code is not None:
            result = ParseResult(
                inner.code, inner.reason + " (found only inside the <think> section)"
            )
    if result.code is not None:
        try:
            ast_tools.parse(result.code)  # nothing deeper than the bound leaves this module
        except ast_tools.TooDeep as e:
            return ParseResult(None, str(e))
    return result


def code_digest(code: str) -> str:
    """A short hash of the program: comments, formatting and docstrings do not change it,
    so textually different copies of one program de-duplicate (see ast_tools.program_key,
    which the offline search uses too)."""
    return ast_tools.digest(code)


# --- thinking sections ---------------------------------------------------------------


def _split_thinking(text: str) -> tuple[str, str]:
    """Return (answer, thinking). Handles closed sections, a stray ``</think>`` whose opening
    tag the server ate, and an unclosed ``<think>`` (everything after it is thinking)."""
    thinking: list[str] = []

    def keep(m: re.Match[str]) -> str:
        thinking.append(m.group(0))
        return "\n"

    answer = _THINK_CLOSED.sub(keep, text)
    close = _THINK_CLOSE.search(answer)
    if close:  # "...reasoning</think> answer": the opening tag is missing
        thinking.append(answer[: close.start()])
        answer = answer[close.end() :]
    opened = _THINK_OPEN.search(answer)
    if opened:  # "<think> reasoning..." never closed
        thinking.append(answer[opened.end() :])
        answer = answer[: opened.start()]
    strip = re.compile(r"</?(think|thinking)>", re.IGNORECASE)
    return answer, strip.sub("\n", "\n".join(thinking))


# --- one part of the answer ------------------------------------------------------------


def _parse_part(text: str) -> ParseResult:
    blocks = [(m.group("lang").lower(), m.group("body")) for m in _FENCE.finditer(text)]
    programs: list[tuple[ast.Module, str] | None] = []
    block_notes: list[str] = []
    for lang, body in blocks:
        parsed = None if lang in _NOT_PYTHON else _parse_loose(body)
        programs.append(parsed[:2] if parsed else None)
        block_notes.append(parsed[2] if parsed else "")

    chosen = [
        (i, p) for i, p in enumerate(programs) if p is not None and _defines(p[0], FUNCTION_NAME)
    ]
    if chosen:
        idx, (_, code) = chosen[-1]  # the last one: models revise and put the final answer last
        what = f"took fenced block {idx + 1} of {len(blocks)} (defines {FUNCTION_NAME})"
        notes = [block_notes[idx]] if block_notes[idx] else []
        if len(chosen) > 1:
            notes.insert(0, f"it is the last of {len(chosen)} blocks that define it")
        others = [(i, p) for i, p in enumerate(programs) if p is not None and i != idx]
        # Earlier blocks first, the nearest first; then later ones.
        others.sort(key=lambda ip: (ip[0] > idx, abs(idx - ip[0])))
        return _finish(code, others, what, notes)

    # A fenced block that mentions compute_reward but does not parse: salvage the region.
    for i, (_, body) in reversed(list(enumerate(blocks))):
        region = _region_around_def(body)
        if region is not None:
            what = f"took the parseable part of fenced block {i + 1} of {len(blocks)} around `def {FUNCTION_NAME}`"
            others = [(j, p) for j, p in enumerate(programs) if p is not None and j != i]
            others.sort(key=lambda jp: (jp[0] > i, abs(i - jp[0])))
            return _finish(region, others, what, [])

    region = _region_around_def(text)
    if region is not None:
        kind = "outside the fenced blocks" if blocks else "no fenced block"
        return _finish(region, [], f"took unfenced code around `def {FUNCTION_NAME}` ({kind})", [])

    if not blocks and f"def {FUNCTION_NAME}" not in text:
        return ParseResult(None, f"no code: no fenced block and no `def {FUNCTION_NAME}`")
    if f"def {FUNCTION_NAME}" not in text:
        return ParseResult(
            None, f"no code: none of the {len(blocks)} fenced block(s) defines {FUNCTION_NAME}"
        )
    return ParseResult(
        None, f"no code: `def {FUNCTION_NAME}` appears but no region around it parses as Python"
    )


def _finish(
    code: str,
    others: list[tuple[int, tuple[ast.Module, str]]],
    what: str,
    notes: list[str],
) -> ParseResult:
    code, dropped = _drop_usage(code)
    helpers, used_blocks = _collect_helpers(code, others)
    parts = [*helpers, code]
    if used_blocks:
        what += " plus helper block" + ("s " if len(used_blocks) > 1 else " ")
        what += ", ".join(str(i + 1) for i in sorted(used_blocks))
    merged = "\n\n".join(p.strip("\n") for p in parts) + "\n"
    added = [
        imp for name, imp in _IMPLIED_IMPORTS.items() if name in _free_names(ast.parse(merged))
    ]
    if added:
        merged = "\n".join(added) + "\n\n" + merged
        what += "; added missing " + ", ".join(f"`{a}`" for a in added)
    if dropped:
        what += f"; dropped {dropped} top-level example/test statement(s)"
    for note in dict.fromkeys(notes):
        what += f"; {note}"
    try:
        ast.parse(merged)  # the promise: only code that parses leaves this module
    except SyntaxError:  # e.g. a `from __future__` import that must come first
        return ParseResult(
            code, what.split(" plus helper")[0].split(";")[0] + " (merging helpers broke it)"
        )
    return ParseResult(merged, what)


# --- parsing helpers -------------------------------------------------------------------


def _parse_loose(code: str) -> tuple[ast.Module, str, str] | None:
    """Parse code as is, dedented, or with tabs expanded. Returns (tree, code, note)."""
    attempts = [(code, "")]
    dedented = textwrap.dedent(code)
    if dedented != code:
        attempts.append((dedented, ""))
    if "\t" in code:
        for width in (4, 8):
            attempts.append(
                (textwrap.dedent(code.expandtabs(width)), f"expanded tabs to {width} spaces")
            )
    for candidate, note in attempts:
        try:
            return ast.parse(candidate), candidate, note
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None


def _defines(tree: ast.Module, name: str) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def _code_like(tree: ast.Module) -> bool:
    """Whether every top-level statement looks like program text rather than prose that
    happens to parse ("Sure", "Note: x")."""
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Assign) and not any(
            isinstance(n, ast.Call) for n in ast.walk(node)
        ):
            continue
        if ast_tools.is_docstring(node):
            continue
        return False
    return True


def _region_around_def(text: str) -> str | None:
    """The largest parseable, code-like run of lines around ``def compute_reward``: the
    function itself, the imports/helpers/constants right before it, defs right after.

    Works in top-level statements (lines at or left of the def's indentation), so it is
    linear in the answer's length; a statement that does not parse on its own may join up
    to a few neighbours (decorators, ``else:``, closing brackets) before the scan stops."""
    lines = text.split("\n")
    for m in reversed(list(_DEF_LINE.finditer(text))):
        before = text.count("\n", 0, m.start())
        base = _indent(lines[before])
        starts = [
            i
            for i, line in enumerate(lines)
            if line.strip()
            and _indent(line) <= base
            and not line.lstrip().startswith(("#", ")", "]", "}"))
        ]
        here = starts.index(before)
        bounds = [*starts, len(lines)]  # statement k spans lines[bounds[k]:bounds[k + 1]]

        def piece(a: int, b: int, bounds: list[int] = bounds) -> bool:
            p = _parse_loose("\n".join(lines[bounds[a] : bounds[b]]))
            return p is not None and _code_like(p[0])

        if not piece(here, here + 1):
            continue
        first, last = here, here + 1
        while True:  # upwards
            grown = next(
                (k for k in range(first - 1, max(first - 5, 0) - 1, -1) if piece(k, first)), None
            )
            if grown is None:
                break
            first = grown
        while True:  # downwards
            limit = min(last + 4, len(starts))
            grown = next((k for k in range(last + 1, limit + 1) if piece(last, k)), None)
            if grown is None:
                break
            last = grown
        for a, b in ((first, last), (here, last), (first, here + 1), (here, here + 1)):
            found = _parse_loose("\n".join(lines[bounds[a] : bounds[b]]).strip("\n"))
            if found is not None and _defines(found[0], FUNCTION_NAME):
                return found[1]
    return None


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _drop_usage(code: str) -> tuple[str, int]:
    """Remove top-level example runs (``print(compute_reward(...))``, ``if __name__ ==
    "__main__":``) that models append; they are not part of the program."""
    tree = ast.parse(code)
    lines = code.split("\n")
    dropped = 0
    for node in reversed(tree.body):
        is_main = isinstance(node, ast.If) and any(
            isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node.test)
        )
        is_call = isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        if is_main or is_call:
            del lines[node.lineno - 1 : node.end_lineno]
            dropped += 1
    return ("\n".join(lines), dropped) if dropped else (code, 0)


def _free_names(tree: ast.Module) -> set[str]:
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - ast_tools.bound_anywhere(tree) - set(dir(builtins))


def _top_level_defs(tree: ast.Module) -> dict[str, ast.stmt]:
    out: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out[n.id] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                out[(a.asname or a.name).split(".")[0]] = node
    return out


def _collect_helpers(
    code: str, others: list[tuple[int, tuple[ast.Module, str]]]
) -> tuple[list[str], set[int]]:
    """Source of the top-level statements in other blocks that define names ``code`` uses
    (transitively), in block order; and the indices of the blocks they came from."""
    picked: dict[tuple[int, int], str] = {}  # (block, lineno) -> source
    used_blocks: set[int] = set()
    main = ast.parse(code)
    missing = _free_names(main)
    seen: set[str] = ast_tools.bound_anywhere(main)
    while missing - seen:
        name = sorted(missing - seen)[0]
        seen.add(name)
        for i, (tree, src) in others:
            node = _top_level_defs(tree).get(name)
            if node is None or (isinstance(node, ast.FunctionDef) and node.name == FUNCTION_NAME):
                continue
            segment = ast.get_source_segment(src, node)
            if segment is None:
                continue
            if (i, node.lineno) not in picked:
                picked[(i, node.lineno)] = segment
                used_blocks.add(i)
                missing |= _free_names(ast.parse(textwrap.dedent(segment)))
            break
    ordered = sorted(picked.items(), key=lambda kv: (not _is_import(kv[1]), kv[0]))
    return [textwrap.dedent(s) for _, s in ordered], used_blocks


def _is_import(source: str) -> bool:
    return source.lstrip().startswith(("import ", "from "))
