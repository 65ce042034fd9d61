"""Removing the reward from environment source code, on the syntax tree (``ast``), never on
text: docstrings go, methods, attributes, parameters and variables whose names mention a
reward, cost, penalty or bonus go, and so does everything computed from them (transitively).
"""

from __future__ import annotations

import ast
import copy
import re
from typing import Any

HIDDEN_NAME = re.compile(r"(?i)reward|penal|bonus|(?<![a-z])(costs?|rews?)(?![a-z])")
"""Identifiers and strings matching this (after camelCase is split) belong to the reward;
'cost' and 'rew' only as whole words, so ``costheta`` stays."""


def strip_reward(tree: ast.Module) -> ast.Module:
    """A copy of ``tree`` without docstrings and without anything reward-related."""
    names: set[str] = set()
    attrs: set[str] = set()
    while True:  # removal propagates across methods: repeat until nothing new is removed
        before = (len(names), len(attrs))
        stripper = _Stripper(names, attrs)
        out = ast.Module(body=stripper.block(copy.deepcopy(tree).body), type_ignores=[])
        names, attrs = stripper.names, stripper.attrs
        if (len(names), len(attrs)) == before:
            return ast.fix_missing_locations(out)


def is_hidden(name: str | None) -> bool:
    """Whether an identifier or string belongs to the reward (see :data:`HIDDEN_NAME`)."""
    if not name:
        return False
    return bool(HIDDEN_NAME.search(re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)))


def _is_str(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


class _Stripper(ast.NodeTransformer):
    """Removes reward statements; ``names``/``attrs`` collect what was removed."""

    def __init__(self, names: set[str], attrs: set[str]) -> None:
        self.names, self.attrs = set(names), set(attrs)

    # -- queries
    def refs(self, node: ast.AST | None) -> bool:
        """Whether ``node`` mentions a removed or reward-like name, attribute or string."""
        if node is None:
            return False
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and (n.id in self.names or is_hidden(n.id)):
                return True
            if isinstance(n, ast.Attribute) and (n.attr in self.attrs or is_hidden(n.attr)):
                return True
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and is_hidden(n.value):
                return True
            if isinstance(n, ast.keyword) and is_hidden(n.arg):
                return True
        return False

    @staticmethod
    def _hidden_arg(node: ast.AST) -> bool:
        """A call argument that is itself a reward-like name (``forward_reward_weight``)."""
        if isinstance(node, ast.Starred):
            node = node.value
        return (isinstance(node, ast.Name) and is_hidden(node.id)) or (
            isinstance(node, ast.Attribute) and is_hidden(node.attr)
        )

    def remove_target(self, target: ast.AST) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                self.names.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                self.attrs.add(n.attr)

    # -- expressions
    def visit_Dict(self, node: ast.Dict) -> ast.Dict:
        self.generic_visit(node)
        kept = [
            (k, v)
            for k, v in zip(node.keys, node.values, strict=True)
            if not self.refs(k) and not self.refs(v)
        ]
        node.keys, node.values = [k for k, _ in kept], [v for _, v in kept]
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        node.args = [a for a in node.args if not self._hidden_arg(a)]
        node.keywords = [
            k for k in node.keywords if not is_hidden(k.arg) and not self._hidden_arg(k.value)
        ]
        return node

    def expr(self, node: ast.expr) -> ast.expr:
        return self.visit(node)

    # -- statements
    def block(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if _is_str(stmt):
                continue  # docstrings and bare strings
            out.extend(self.stmt(stmt))
        return out

    def stmt(self, s: ast.stmt) -> list[ast.stmt]:  # noqa: C901 - one case per statement kind
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            if is_hidden(s.name) or s.name in self.attrs or s.name in self.names:
                self.names.add(s.name)
                self.attrs.add(s.name)
                return []
            self._strip_args(s.args)
            s.decorator_list = [self.expr(d) for d in s.decorator_list]
            s.body = self.block(s.body) or [ast.Expr(ast.Constant(...))]
            return [s]
        if isinstance(s, ast.ClassDef):
            s.body = self.block(s.body) or [ast.Pass()]
            return [s]
        if isinstance(s, ast.Assign):
            return self._assign(s)
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                s.value = self.expr(s.value)
            if self.refs(s.target) or self.refs(s.value):
                self.remove_target(s.target)
                return []
            return [s]
        if isinstance(s, ast.AugAssign):
            s.value = self.expr(s.value)
            if self.refs(s.target) or self.refs(s.value):
                self.remove_target(s.target)
                return []
            return [s]
        if isinstance(s, ast.Return):
            if s.value is not None:
                s.value = self.expr(s.value)
                if isinstance(s.value, ast.Tuple):
                    s.value.elts = [ast.Constant(...) if self.refs(e) else e for e in s.value.elts]
                elif self.refs(s.value):
                    s.value = ast.Constant(...)
            return [s]
        if isinstance(s, ast.If | ast.While | ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            head = [getattr(s, f) for f in ("test", "iter", "target") if hasattr(s, f)]
            head += [i.context_expr for i in getattr(s, "items", [])]
            if any(self.refs(h) for h in head):
                for t in ([s.target] if hasattr(s, "target") else []) + [
                    i.optional_vars for i in getattr(s, "items", []) if i.optional_vars
                ]:
                    self.remove_target(t)
                return []
            return self._compound(s)
        if isinstance(s, ast.Try):
            s.body = self.block(s.body) or [ast.Pass()]
            for h in s.handlers:
                h.body = self.block(h.body) or [ast.Pass()]
            s.orelse, s.finalbody = self.block(s.orelse), self.block(s.finalbody)
            return [s]
        if isinstance(s, ast.Import | ast.ImportFrom | ast.Pass | ast.Break | ast.Continue):
            return [] if isinstance(s, ast.Import | ast.ImportFrom) and self.refs(s) else [s]
        s = self.visit(s)
        return [] if self.refs(s) else [s]

    def _assign(self, s: ast.Assign) -> list[ast.stmt]:
        s.value = self.expr(s.value)
        if self.refs(s.value):
            for t in s.targets:
                self.remove_target(t)
            return []
        targets: list[ast.expr] = []
        for t in s.targets:
            if isinstance(t, ast.Tuple | ast.List) and not all(self.refs(e) for e in t.elts):
                t.elts = [ast.Name("_", ast.Store()) if self.refs(e) else e for e in t.elts]
                targets.append(t)
            elif self.refs(t):
                self.remove_target(t)
            else:
                targets.append(t)
        s.targets = targets
        return [s] if targets else []

    def _compound(self, s: Any) -> list[ast.stmt]:
        s.body = self.block(s.body)
        if hasattr(s, "orelse"):
            s.orelse = self.block(s.orelse)
        if not s.body and not getattr(s, "orelse", None):
            return []
        s.body = s.body or [ast.Pass()]
        return [s]

    def _strip_args(self, args: ast.arguments) -> None:
        positional = args.posonlyargs + args.args
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += args.defaults
        n_posonly = len(args.posonlyargs)
        keep = [(a, d) for a, d in zip(positional, defaults, strict=True) if not is_hidden(a.arg)]
        for a in positional:
            if is_hidden(a.arg):
                self.names.add(a.arg)
        kept_posonly = sum(1 for a, _ in keep if a in positional[:n_posonly])
        args.posonlyargs = [a for a, _ in keep[:kept_posonly]]
        args.args = [a for a, _ in keep[kept_posonly:]]
        kept_defaults = [d for _, d in keep]
        first = next((i for i, d in enumerate(kept_defaults) if d is not None), len(keep))
        args.defaults = [self.expr(d) for d in kept_defaults[first:] if d is not None]
        kw = [
            (a, d)
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            if not is_hidden(a.arg)
        ]
        args.kwonlyargs = [a for a, _ in kw]
        args.kw_defaults = [d if d is None else self.expr(d) for _, d in kw]
        for star in ("vararg", "kwarg"):
            a = getattr(args, star)
            if a is not None and is_hidden(a.arg):
                self.names.add(a.arg)
                setattr(args, star, None)
