"""The source of an environment class as the model sees it: the class with the module-level
helpers it uses and stubs of the inherited methods it relies on, reward removed
(:func:`eureka_lab.prompt.reward_removal.strip_reward`)."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

from eureka_lab.core import ast_tools
from eureka_lab.prompt.reward_removal import strip_reward

_OBS_METHOD = re.compile(r"(?i)obs")
_SKIPPED_METHODS = ("render", "close")
"""Irrelevant to the reward and long: left out of the source."""


def env_source(cls: type) -> str:
    """Source of an env class with its module's helpers, reward computation removed."""
    module = inspect.getmodule(cls)
    try:
        tree = ast.parse(inspect.getsource(module)) if module else None
    except (OSError, TypeError):
        tree = None
    top = (
        [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
        if tree
        else []
    )
    if top:
        cls_node = top[0]
    else:
        try:
            parsed = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        except (OSError, TypeError):
            return f"# The source of {cls.__module__}.{cls.__qualname__} is not available.\n"
        assert isinstance(parsed, ast.ClassDef)  # a class's source is its class statement
        cls_node = parsed
        tree = None
    cls_node.body = [
        n
        for n in cls_node.body
        if not (isinstance(n, ast.FunctionDef) and n.name in _SKIPPED_METHODS)
    ]
    body: list[ast.stmt] = _module_helpers(tree, cls_node) if tree else []
    shown = {n.name for n in body if isinstance(n, ast.ClassDef)}  # whole base classes
    body += _inherited_methods(cls, cls_node, shown)
    body.append(cls_node)
    stripped = strip_reward(ast.Module(body=body, type_ignores=[]))
    return ast.unparse(stripped) + "\n"


def _module_helpers(tree: ast.Module, cls_node: ast.ClassDef) -> list[ast.stmt]:
    """Imports, functions and constants of the module that the class uses (transitively)."""
    defs = ast_tools.module_defs(
        ast.Module(
            body=[
                n
                for n in tree.body
                if n is not cls_node
                and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
            ],
            type_ignores=[],
        )
    )
    needed = {id(n) for n in ast_tools.closure(defs, [cls_node])}
    return [n for n in tree.body if id(n) in needed]


def _inherited_methods(cls: type, cls_node: ast.ClassDef, shown: set[str]) -> list[ast.stmt]:
    """Stubs of base classes holding methods the class uses but does not define: observation
    methods always, any method of a base class from outside gymnasium. Base classes of the
    same module named in ``shown`` are already there in full."""
    own = {n.name for n in cls_node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    wanted = [a.attr for a in ast.walk(cls_node) if isinstance(a, ast.Attribute)]
    wanted += [m for m in ("step", "reset") if m not in own]
    stubs: dict[type, ast.ClassDef] = {}
    seen: set[str] = set(own)
    while wanted:
        name = wanted.pop(0)
        if name in seen:
            continue
        seen.add(name)
        owner = next((b for b in cls.__mro__[1:] if name in vars(b)), None)
        if owner is None or owner.__module__.split(".")[0] in ("builtins", "abc", "typing"):
            continue
        if owner.__module__ == cls.__module__ and owner.__name__ in shown:
            continue
        if owner.__module__.startswith("gymnasium.") and not _OBS_METHOD.search(name):
            continue
        fn = vars(owner)[name]
        fn = getattr(fn, "fget", None) or getattr(fn, "__func__", None) or fn
        if not inspect.isfunction(fn):
            continue
        try:
            node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        except (OSError, TypeError, SyntaxError):
            continue
        stub = stubs.setdefault(
            owner,
            ast.ClassDef(name=owner.__name__, bases=[], keywords=[], body=[], decorator_list=[]),
        )
        stub.body.append(node)
        wanted += [a.attr for a in ast.walk(node) if isinstance(a, ast.Attribute)]
    return list(stubs.values())
