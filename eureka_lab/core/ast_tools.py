"""The one home of the walks over Python syntax trees that the package needs: parsing with a
bound on nesting, the identity of a program, docstrings, what a statement binds and reads,
the definitions a function needs, every identifier a tree holds, fresh names, and copying a
tree with renaming.

Everything here that may see a model's answer is iterative (``ast.walk`` and explicit
stacks), so no answer can exhaust the interpreter's recursion limit in the orchestrator.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MAX_DEPTH = 100
"""Deepest nesting of syntax accepted from a model (a 1,000-term sum nests 1,000 deep)."""


class TooDeep(ValueError):
    """Code nested deeper than :data:`MAX_DEPTH`."""


def depth(tree: ast.AST) -> int:
    """How deeply ``tree`` nests (iteratively)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def parse(code: str, limit: int = MAX_DEPTH) -> ast.Module:
    """``ast.parse`` that refuses code nested deeper than ``limit`` (TooDeep), before
    anything walks it recursively. SyntaxError as usual."""
    try:
        tree = ast.parse(code)
    except (RecursionError, MemoryError) as e:
        raise TooDeep(f"the code is too deeply nested to parse ({type(e).__name__})") from None
    d = depth(tree)
    if d > limit:
        raise TooDeep(
            f"the code nests {d} levels deep, more than {limit}: split long expressions "
            "(e.g. a sum of many terms) into named steps"
        )
    return tree


def is_docstring(node: ast.stmt) -> bool:
    """Whether ``node`` is a bare string expression (a docstring where it comes first)."""
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _fingerprint(tree: ast.AST) -> str:
    """``ast.dump(tree, annotate_fields=False)``'s information, built without recursion."""
    out: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item in (")", "]"):
            out.append(item)
        elif isinstance(item, ast.AST):
            out.append(type(item).__name__ + "(")
            stack.append(")")
            stack.extend(reversed([v for _, v in ast.iter_fields(item)]))
        elif isinstance(item, list):
            out.append("[")
            stack.append("]")
            stack.extend(reversed(item))
        else:
            out.append(repr(item) + ",")
    return "".join(out)


def program_key(code: str) -> str:
    """The identity of a program: equal for copies that differ only in formatting, comments
    and docstrings. Code that does not parse is its stripped text. The loop's
    de-duplication (``parsing.code_digest``) and the offline search both use it."""
    try:
        tree = parse(code)
    except (SyntaxError, ValueError):
        return code.strip()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and body
            and is_docstring(body[0])
        ):
            node.body = body[1:] or [ast.Pass()]
    return _fingerprint(tree)


def digest(code: str) -> str:
    """A short hash of :func:`program_key`."""
    return hashlib.sha256(program_key(code).encode()).hexdigest()[:16]


def identifiers(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every identifier the tree holds as a plain string, with its node: names, attribute
    names, definitions, parameters, keyword arguments, import names, match-pattern
    attribute names and captures, ``global`` names. String constants are data, not
    identifiers, and are not listed."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            continue
        for _, value in ast.iter_fields(node):
            if isinstance(value, str):
                yield node, value
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, str):
                        yield node, item


def attribute_names(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Names read or written as attributes: ``x.NAME`` and match class patterns
    ``case C(NAME=...)`` (which read ``C.NAME`` from the subject)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node, node.attr
        elif isinstance(node, ast.MatchClass):
            for name in node.kwd_attrs:
                yield node, name


def module_defs(tree: ast.Module) -> dict[str, ast.stmt]:
    """The top-level statement that binds each name of a module."""
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        for name in bound(node):
            defs[name] = node
    return defs


def closure(defs: Mapping[str, ast.stmt], roots: Iterable[ast.AST]) -> list[ast.stmt]:
    """The statements of ``defs`` that ``roots`` use, transitively, in first-use order."""
    needed: dict[int, ast.stmt] = {}
    todo: list[ast.AST] = list(roots)
    while todo:
        for n in ast.walk(todo.pop()):
            if isinstance(n, ast.Name) and n.id in defs and id(defs[n.id]) not in needed:
                needed[id(defs[n.id])] = defs[n.id]
                todo.append(defs[n.id])
    return list(needed.values())


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
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    out = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return out - _scoped(stmt)


def bound_anywhere(tree: ast.AST) -> set[str]:
    """Every name bound anywhere in ``tree``: definitions, assignments, parameters, imports,
    exception names."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
    return out


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
