"""The house stays readable: no import circle between modules or between packages (every
import counts: at the top, inside a function, under TYPE_CHECKING), no module much over 450
lines, and no seam hook probed with getattr or hasattr (every seam declares its whole
contract)."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

from eureka_lab.runs.config import LoopConfig

PACKAGE = Path(__file__).resolve().parent.parent / "eureka_lab"
MAX_LINES = 460  # "about 450"
HOOKS = ("attach", "records_itself", "prefers_newest", "train_group", "envs_for",
         "reward_namespace", "races", "needs_videos", "tensors")  # fmt: skip


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (a name imported from a package counts as
    the submodule where there is one)."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.append(node.module)
                targets += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                # A submodule importing its own package's __init__ is how Python imports.
                if target in modules and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_itself_back():
    assert _cycle(_imports(_modules())) is None


def test_no_package_imports_itself_back():
    packages: dict[str, set[str]] = {}
    for module, targets in _imports(_modules()).items():
        for target in targets:
            if _package(target) != _package(module):
                packages.setdefault(_package(module), set()).add(_package(target))
    assert _cycle(packages) is None


def test_no_module_is_long():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert not long, long


def test_no_seam_hook_is_probed():
    probe = re.compile(rf"(getattr|hasattr)\([^)]*[\"']({'|'.join(HOOKS)})[\"']")
    found = [f"{p}:{i}" for p in PACKAGE.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if probe.search(line)]  # fmt: skip
    assert not found, found


def test_the_loop_settings_name_no_executor():
    assert not [f.name for f in fields(LoopConfig) if "ray" in f.name or "slurm" in f.name]


def test_no_test_imports_another_test_module():
    tests = Path(__file__).parent
    imports = re.compile(r"^\s*(from|import)\s+(test_\w+|tests\.test_\w+)", re.M)
    found = [f"{p.name}: {m.group(2)}" for p in sorted(tests.rglob("*.py"))
             for m in imports.finditer(p.read_text())]  # fmt: skip
    assert not found, f"shared helpers belong in tests/support/: {found}"
