"""Test-only: model answers shaped to stall the orchestrator while it reads them.

Each shape is a function of a size in characters that returns an answer of at most that
size. Several once cost the orchestrator time quadratic in the answer's length, in a regular
expression that rescanned the rest of the answer for each tag or fence, or in a loop that
walked the answer or a list again for each definition, name or violation; the others probe
the same scans with other shapes (see tests/test_answer_bounds.py and benchmarks/parsing.py).
"""

from __future__ import annotations

from collections.abc import Callable

REWARD_HEAD = "def compute_reward(obs, action, next_obs, info):\n"


def _repeat(unit: str, size: int, around: str = "") -> str:
    """``unit`` repeated to fill what ``around`` leaves of ``size``."""
    return unit * max(1, (size - len(around)) // len(unit))


def _nested_defs(size: int) -> str:
    """``def compute_reward(`` lines, each indented one space deeper than the one before:
    each line's statement holds all the lines after it."""
    lines: list[str] = []
    total = 0
    while total + len(lines) + 20 <= size:
        lines.append(" " * len(lines) + "def compute_reward(\n")
        total += len(lines[-1])
    return "".join(lines)


def _fenced(code: str) -> str:
    return f"```python\n{code}```\n"


def _many_helpers(size: int) -> str:
    """One block of constants, another whose reward reads each of them."""
    constants: list[str] = []
    reads: list[str] = []
    total = len(_fenced("") * 2 + REWARD_HEAD + "    return x, {}\n")
    while True:
        i = len(reads)
        constant, read = f"C{i} = {i}\n", f"    x = C{i}\n"
        total += len(constant) + len(read)
        if total > size:
            break
        constants.append(constant)
        reads.append(read)
    return _fenced("".join(constants)) + _fenced(
        f"{REWARD_HEAD}{''.join(reads)}    return x, {{}}\n"
    )


def _with_reward(size: int, unit: str, before: bool) -> str:
    """A fenced reward with ``unit`` repeated before or after it."""
    reward = f"{REWARD_HEAD}    return 0, {{}}\n"
    filler = _repeat(unit, size, _fenced(reward))
    return _fenced(filler + reward if before else reward + filler)


def _long_reward(size: int) -> str:
    ending = "    return x, {'x': x}\n"
    body = _repeat("    x = obs[:, 0] * 2\n", size, _fenced(REWARD_HEAD + ending))
    return _fenced(f"{REWARD_HEAD}{body}{ending}")


SHAPES: dict[str, Callable[[int], str]] = {
    "<think> repeated": lambda n: _repeat("<think>", n),
    "<thinking> repeated": lambda n: _repeat("<thinking>", n),
    "</think> repeated": lambda n: _repeat("</think>", n),
    "<think> closed by the other name": lambda n: _repeat("<think></thinking>", n),
    "backticks on one line": lambda n: "`" * n,
    "tildes on one line": lambda n: "~" * n,
    "backtick lines": lambda n: _repeat("`" * 1000 + "x\n", n),
    "many fences": lambda n: _repeat("```python\nx = 1\n```\n", n),
    "unterminated fences": lambda n: _repeat("```python\n", n),
    "nested fences": lambda n: _repeat("````python\n```python\n~~~\n", n),
    "one long line": lambda n: "x" * n,
    "huge indentation": lambda n: _repeat(" ", n, REWARD_HEAD) + REWARD_HEAD,
    "carriage returns": lambda n: _repeat("x\r", n),
    "many `def compute_reward(` lines": lambda n: _repeat("def compute_reward(\n", n),
    "nested `def compute_reward(` lines": _nested_defs,
    "many helpers": _many_helpers,
    "example calls between constants": lambda n: _with_reward(n, "print(1)\nX = 1\n", False),
    "many policy violations": lambda n: _with_reward(n, "import os\n", True),
    "a long reward": _long_reward,
    "many rewards": lambda n: _repeat(_fenced(f"{REWARD_HEAD}    return 0, {{}}\n"), n),
    "tab-indented broken definitions": lambda n: _fenced(
        _repeat("\t" * 100 + "def compute_reward(\n", n, _fenced(""))
    ),
    "unfenced statements before a reward": lambda n: (
        _repeat("x = 1\n", n, REWARD_HEAD + "    return x, {}\n")
        + f"{REWARD_HEAD}    return x, {{}}\n"
    ),
    "unfenced reward before statements": lambda n: (
        f"{REWARD_HEAD}    return 0, {{}}\n"
        + _repeat("def f():\n    pass\n", n, REWARD_HEAD + "    return 0, {}\n")
    ),
}
