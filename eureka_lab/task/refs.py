"""References to a task's code, ``module:function``: resolved beside the task file first,
then as an importable module; a reward's source extracted as a standalone program."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from eureka_lab.core import ast_tools
from eureka_lab.core.errors import TaskError, did_you_mean


def _import_module(module: str, base_dir: Path | None) -> Any:
    if base_dir is not None:
        path = Path(base_dir) / (module.replace(".", "/") + ".py")
        if path.is_file():
            name = f"eureka_lab_task_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}_{module}"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec and spec.loader
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        where = f" beside the task file ({base_dir})" if base_dir else ""
        nearby = [p.stem for p in Path(base_dir).glob("*.py")] if base_dir else []
        raise TaskError(
            f"Cannot import {module!r} ({e})."
            + did_you_mean(module, nearby)
            + f" Put {module}.py{where} or install the module."
        ) from None


def split_ref(ref: str) -> tuple[str, str]:
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise TaskError(f"Bad reference {ref!r}: write it as 'module:function'.")
    return module.removesuffix(".py"), attr


def resolve_ref(ref: str, base_dir: Path | None) -> Any:
    """Import ``module:attr`` (module beside the task file first) and return the attribute."""
    module, attr = split_ref(ref)
    mod = _import_module(module, base_dir)
    try:
        return getattr(mod, attr)
    except AttributeError:
        names = [n for n in vars(mod) if not n.startswith("_")]
        raise TaskError(
            f"{module!r} has no attribute {attr!r}." + did_you_mean(attr, names)
        ) from None


def reward_source(ref: str, base_dir: Path | None) -> str:
    """Source of a contract reward as a standalone program defining ``compute_reward``.

    The referenced function is renamed ``compute_reward``; the module-level functions,
    constants and imports it uses (transitively) come along, nothing else.
    """
    fn = resolve_ref(ref, base_dir)
    path = Path(fn.__code__.co_filename)
    tree = ast.parse(path.read_text())
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    defs = {
        k: v
        for k, v in ast_tools.module_defs(tree).items()
        if isinstance(v, ast.FunctionDef | ast.Assign | ast.AnnAssign)
    }
    name = fn.__name__
    if name not in defs:
        raise TaskError(f"Cannot find the source of {ref!r} in {path}.")
    needed_nodes = [defs[name], *ast_tools.closure(defs, [defs[name]])]
    used = {n.id for d in needed_nodes for n in ast.walk(d) if isinstance(n, ast.Name)}
    body: list[ast.stmt] = [
        imp for imp in imports if any((a.asname or a.name).split(".")[0] in used for a in imp.names)
    ]
    seen: set[int] = set()
    for node in tree.body:
        if id(node) in seen:
            continue
        if any(d is node for d in needed_nodes):
            seen.add(id(node))
            if isinstance(node, ast.FunctionDef) and node.name == name:
                node = ast.FunctionDef(**{**node.__dict__, "name": "compute_reward"})
            body.append(node)
    module = ast.Module(body=body, type_ignores=[])
    ast.fix_missing_locations(module)
    return ast.unparse(module) + "\n"
