"""Pull the reward program out of a model's answer.

Models wrap code in prose, split it over several fenced blocks, think aloud in
``<think>`` sections, forget the fences, or indent with tabs. :func:`parse_response`
finds the block that defines ``compute_reward``, merges the earlier blocks that define
what it uses, and says in ``reason`` what it took and why (or why it found nothing).
It only ever returns code that ``ast.parse``s and defines ``compute_reward``; whether that
code is *allowed* is :mod:`eureka_lab.reward.check`'s question.

An answer is untrusted text of any length: one longer than :data:`MAX_ANSWER_CHARS` is
refused unread, and reading a shorter one takes time linear in its length whatever its
shape: fences are found in one pass over the lines, ``<think>`` sections in one pass over
the tags, helpers in an index of the blocks built once, and only the last few ``def
compute_reward`` lines are tried where no block holds the program.
"""

from __future__ import annotations

import ast
import bisect
import builtins
import heapq
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from eureka_lab.core import ast_tools
from eureka_lab.core.bounds import MAX_ANSWER_CHARS
from eureka_lab.reward.answer import cut_answer, fenced_blocks, split_thinking
from eureka_lab.reward.contract import FUNCTION_NAME

__all__ = ["MAX_ANSWER_CHARS", "ParseResult", "code_digest", "cut_answer", "parse_response"]


# Matched against one line at a time: the opening line of a fenced block.
_DEF_LINE = re.compile(rf"^(?P<indent>[ \t]*)def\s+{FUNCTION_NAME}\s*\(", re.MULTILINE)
_NOT_PYTHON = {"bash", "sh", "shell", "console", "json", "yaml", "text", "txt", "markdown", "md"}
_BUILTINS = frozenset(dir(builtins))

_DEFINITIONS_TRIED = 10
"""How many ``def compute_reward`` lines of one text, the last ones, the search for code
without fences tries. A model's drafts are a handful; each try parses the definition's
statement, which may hold the rest of the text, so that trying them all would cost time
quadratic in an answer made of nested definitions."""

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


def parse_response(text: str, limit: int = MAX_ANSWER_CHARS) -> ParseResult:
    """Extract the reward program from a model's answer; see the module docstring. An answer
    longer than ``limit`` characters is refused unread (see :data:`MAX_ANSWER_CHARS`)."""
    if len(text) > limit:
        return ParseResult(
            None,
            f"no code: the answer is longer than the limit of {limit:,} characters "
            "(MAX_ANSWER_CHARS) and was not read; answer with the reward code and a short "
            "explanation",
        )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    answer, thinking = split_thinking(text)
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


# --- one part of the answer ------------------------------------------------------------


def _parse_part(text: str) -> ParseResult:
    blocks = fenced_blocks(text)
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
        idx, program = chosen[-1]  # the last one: models revise and put the final answer last
        what = f"took fenced block {idx + 1} of {len(blocks)} (defines {FUNCTION_NAME})"
        notes = [block_notes[idx]] if block_notes[idx] else []
        if len(chosen) > 1:
            notes.insert(0, f"it is the last of {len(chosen)} blocks that define it")
        others = [(i, p) for i, p in enumerate(programs) if p is not None and i != idx]
        # Earlier blocks first, the nearest first; then later ones.
        others.sort(key=lambda ip: (ip[0] > idx, abs(idx - ip[0])))
        return _finish(program, others, what, notes)

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
    program: tuple[ast.Module, str],
    others: Sequence[tuple[int, tuple[ast.Module, str] | None]],
    what: str,
    notes: list[str],
) -> ParseResult:
    """The program with its helpers from ``others`` and the imports it lacks. Each tree is
    parsed once where it can be: a long program costs the orchestrator every parse."""
    taken = what
    tree, code, dropped = _drop_usage(*program)
    bound = ast_tools.bound_anywhere(tree)
    free = _loaded_names(tree) - bound - _BUILTINS
    helpers, used_blocks = _collect_helpers(free, bound, others)
    parts = [*helpers, code]
    if used_blocks:
        what += " plus helper block" + ("s " if len(used_blocks) > 1 else " ")
        what += ", ".join(str(i + 1) for i in sorted(used_blocks))
    merged = "\n\n".join(p.strip("\n") for p in parts) + "\n"
    try:  # the promise: only code that parses leaves this module
        if helpers:
            free = _free_names(ast.parse(merged))
        added = [imp for name, imp in _IMPLIED_IMPORTS.items() if name in free]
        if added:
            merged = "\n".join(added) + "\n\n" + merged
            ast.parse(merged)
    except SyntaxError:
        return ParseResult(code, f"{taken} (merging helpers broke it)")
    if added:
        what += "; added missing " + ", ".join(f"`{a}`" for a in added)
    if dropped:
        what += f"; dropped {dropped} top-level example/test statement(s)"
    for note in dict.fromkeys(notes):
        what += f"; {note}"
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


def _region_around_def(text: str) -> tuple[ast.Module, str] | None:
    """The largest parseable, code-like run of lines around ``def compute_reward``: the
    function itself, the imports/helpers/constants right before it, defs right after.

    Works in top-level statements (lines at or left of the def's indentation), so it is
    linear in the answer's length; a statement that does not parse on its own may join up
    to a few neighbours (decorators, ``else:``, closing brackets) before the scan stops.
    Only the last :data:`_DEFINITIONS_TRIED` definitions are tried."""
    defs = _def_lines(text)[-_DEFINITIONS_TRIED:]
    if not defs:
        return None
    lines = text.split("\n")
    indents = [_indent(line) for line in lines]
    statements = [
        i
        for i, line in enumerate(lines)
        if line.strip() and not line.lstrip().startswith(("#", ")", "]", "}"))
    ]
    for before in reversed(defs):
        base = indents[before]
        starts = [i for i in statements if indents[i] <= base]
        here = bisect.bisect_left(starts, before)
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
                return found[:2]
    return None


def _def_lines(text: str) -> list[int]:
    """The line number of each ``def compute_reward(``, counting the lines once."""
    numbers: list[int] = []
    line = position = 0
    for m in _DEF_LINE.finditer(text):
        line += text.count("\n", position, m.start())
        position = m.start()
        numbers.append(line)
    return numbers


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _drop_usage(tree: ast.Module, code: str) -> tuple[ast.Module, str, int]:
    """Remove top-level example runs (``print(compute_reward(...))``, ``if __name__ ==
    "__main__":``) that models append; they are not part of the program. Whole lines go,
    so a run that shares a line with a statement of the program stays. Returns the
    program's tree, its code, and how many statements went."""
    lines = code.split("\n")
    program = [False] * len(lines)  # lines that hold a statement that stays
    usage = []
    for node in tree.body:
        first, last = node.lineno - 1, node.end_lineno or node.lineno
        if _is_usage(node):
            usage.append((first, last))
        else:
            program[first:last] = [True] * (last - first)
    dropped = [(first, last) for first, last in usage if not any(program[first:last])]
    if not dropped:
        return tree, code, 0
    keep = [True] * len(lines)
    for first, last in dropped:
        keep[first:last] = [False] * (last - first)
    code = "\n".join(line for line, kept in zip(lines, keep, strict=True) if kept)
    return ast.parse(code), code, len(dropped)


def _is_usage(node: ast.stmt) -> bool:
    """Whether a top-level statement is a call or an ``if __name__ == ...`` block."""
    if isinstance(node, ast.If):
        return any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node.test))
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)


def _free_names(tree: ast.Module) -> set[str]:
    return _loaded_names(tree) - ast_tools.bound_anywhere(tree) - _BUILTINS


def _loaded_names(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


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
    free: set[str], bound: set[str], others: Sequence[tuple[int, tuple[ast.Module, str] | None]]
) -> tuple[list[str], set[int]]:
    """Source of the top-level statements in other blocks that define the names a program
    reads and does not bind (``free``; ``bound`` are those it binds anywhere), transitively,
    in block order; and the indices of the blocks they came from. Each name is looked up
    once, in an index of the blocks built once, in alphabetical order (which decides which
    of two statements on one line is taken: a line is taken once)."""
    definitions = _definitions(others)
    sources: dict[int, list[bytes]] = {}
    picked: dict[tuple[int, int], str] = {}  # (block, lineno) -> source
    seen = set(bound)
    todo = sorted(free)  # a heap
    while todo:
        name = heapq.heappop(todo)
        if name in seen:
            continue
        seen.add(name)
        if name not in definitions:
            continue
        i, node, src = definitions[name]
        if (i, node.lineno) in picked:
            continue
        if i not in sources:
            sources[i] = [line.encode() + b"\n" for line in src.split("\n")]
        segment = _segment(sources[i], node)
        picked[(i, node.lineno)] = segment
        for used in _free_names(ast.parse(textwrap.dedent(segment))):
            heapq.heappush(todo, used)
    ordered = sorted(picked.items(), key=lambda kv: (not _is_import(kv[1]), kv[0]))
    return [textwrap.dedent(s) for _, s in ordered], {i for i, _ in picked}


def _definitions(
    others: Sequence[tuple[int, tuple[ast.Module, str] | None]],
) -> dict[str, tuple[int, ast.stmt, str]]:
    """For each name, the first of ``others`` that defines it at top level (other than as
    ``compute_reward``): (block index, the statement, the block's source)."""
    out: dict[str, tuple[int, ast.stmt, str]] = {}
    for i, p in others:
        if p is None:
            continue
        tree, src = p
        for name, node in _top_level_defs(tree).items():
            if name not in out and not (
                isinstance(node, ast.FunctionDef) and node.name == FUNCTION_NAME
            ):
                out[name] = (i, node, src)
    return out


def _segment(lines: list[bytes], node: ast.stmt) -> str:
    """``ast.get_source_segment`` over source lines encoded once (it splits and encodes
    the whole source at each call). Offsets within a line count UTF-8 bytes."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    end = node.end_col_offset
    if first == last:
        return lines[first][node.col_offset : end].decode()
    middle = lines[first + 1 : last]
    return b"".join([lines[first][node.col_offset :], *middle, lines[last][:end]]).decode()


def _is_import(source: str) -> bool:
    return source.lstrip().startswith(("import ", "from "))
