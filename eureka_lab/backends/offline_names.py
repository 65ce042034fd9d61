"""Names in Python syntax trees, for the offline backend's program surgery: what a statement
binds and reads, every name a tree mentions, fresh names, and copying a tree with renaming."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any


def all_args(args: ast.arguments) -> list[ast.arg]:
    """Every parameter of a signature."""
    out = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


def used(node: ast.AST) -> set[str]:
    """Free names ``node`` reads."""
    loads = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return loads - _locals(node)
    return loads - _scoped(node)


def bound(stmt: ast.stmt) -> set[str]:
    """Names a statement binds at its own level."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in stmt.names}
    out = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return out - _scoped(stmt)


def names_in(nodes: Iterable[ast.AST]) -> set[str]:
    """Every name, parameter, definition and import alias the trees mention."""
    out: set[str] = set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                out.add(n.id)
            elif isinstance(n, ast.arg):
                out.add(n.arg)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
            elif isinstance(n, ast.alias):
                out.add(n.asname or n.name.split(".")[0])
    return out


def fresh(name: str, taken: set[str]) -> str:
    """``name_2``, ``name_3``, ...: the first not in ``taken``."""
    k = 2
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


def copy_tree(node: Any) -> Any:
    """A deep copy of an AST or a list of them (much faster than copy.deepcopy)."""
    if isinstance(node, ast.AST):
        new = node.__class__()
        for f in (*node._fields, *node._attributes):
            if hasattr(node, f):
                setattr(new, f, copy_tree(getattr(node, f)))
        return new
    if isinstance(node, list):
        return [copy_tree(x) for x in node]
    return node


def rename(node: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``node`` with the free names in ``mapping`` renamed."""
    node = copy_tree(node)
    return _Renamer(mapping).visit(node) if mapping else node


def _scoped(node: ast.AST) -> set[str]:
    """Names bound inside comprehensions and lambdas within ``node``."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            out |= {m.id for m in ast.walk(n.target) if isinstance(m, ast.Name)}
        elif isinstance(n, ast.Lambda):
            out |= {a.arg for a in all_args(n.args)}
        elif isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
    return out


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    out = {a.arg for a in all_args(fn.args)}
    for s in fn.body:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                out.add(n.id)
    return out


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.m = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.m.get(node.id, node.id)
        return node

    def visit_alias(self, node: ast.alias) -> ast.alias:
        name = node.asname or node.name
        if name in self.m:
            node.asname = self.m[name]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name = self.m.get(node.name, node.name)
        for d in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if d is not None:
                self.visit(d)
        inner = _Renamer({k: v for k, v in self.m.items() if k not in _locals(node)})
        node.body = [inner.visit(s) for s in node.body]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        local = {a.arg for a in all_args(node.args)}
        node.body = _Renamer({k: v for k, v in self.m.items() if k not in local}).visit(node.body)
        return node
