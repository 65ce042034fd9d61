"""Static policy for untrusted reward code, checked on the AST before anything runs.

The policy is an allowlist: reward code is numeric maths over numpy arrays, so it needs
very little of Python and a reviewed part of numpy. :func:`check_code` returns one
human-readable violation per problem, each as ``line N: [rule] what is wrong; the fix``,
so the messages can go back to the model. The runtime half (restricted builtins, a numpy
proxy holding only :data:`NUMPY_ALLOWED`) is :mod:`eureka_lab.reward.loader`.
"""

from __future__ import annotations

import ast

from eureka_lab.core import ast_tools
from eureka_lab.reward.allowed import (
    BAD_ATTRIBUTES,
    FORBIDDEN_NAMES,
    INTROSPECTION_PREFIXES,
    LINALG_ALLOWED,
    MATH_NAMES,
    MODULES,
    NUMPY_ALLOWED,
    SAFE_BUILTINS,
    VALUE_ATTRIBUTES,
    refused_by_name,
    value_attribute_message,
)
from eureka_lab.reward.contract import ARGUMENTS, FUNCTION_NAME

__all__ = ["check_code"]


def check_code(code: str) -> list[str]:
    """Return the policy violations in ``code`` (empty when it is allowed)."""
    try:
        tree = ast_tools.parse(code)
    except SyntaxError as e:
        return [f"line {e.lineno or 0}: [syntax] the code does not parse: {e.msg}"]
    except ast_tools.TooDeep as e:
        return [f"line 0: [nesting] {e}"]
    except (ValueError, MemoryError) as e:
        return [f"line 0: [syntax] the code cannot be parsed: {type(e).__name__}"]
    checker = _Checker()
    checker.check_module(tree)
    checker.check_names(tree)
    try:
        checker.visit(tree)
    except RecursionError:
        checker.add(tree, "nesting", "the code is nested too deeply to check")
    return [msg for _, msg in sorted(checker.violations, key=lambda v: v[0])]


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.violations: dict[tuple[int, str], None] = {}  # a set that keeps the order
        self.modules: dict[str, str] = {}  # local name -> "numpy" | "math"
        self.bound: set[str] = set()
        self._attribute_bases: set[int] = set()  # ids of Name/Attribute nodes used as a base

    def add(self, node: ast.AST, rule: str, message: str) -> None:
        line = getattr(node, "lineno", 0)
        entry = (line, f"line {line}: [{rule}] {message}")
        self.violations[entry] = None

    # --- whole-module rules ------------------------------------------------------------

    def check_module(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._check_import(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bound.add(node.name)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound.add(node.id)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.bound.add(node.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                self.bound.update(a.asname or a.name for a in node.names)
        constants = {  # names imported from math are constants too (pi, e, tau, inf)
            a.asname or a.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "math"
            for a in node.names
        }
        for i, node in enumerate(tree.body):
            if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef):
                continue
            if i == 0 and ast_tools.is_docstring(node):
                continue
            if isinstance(node, ast.AnnAssign) and any(
                isinstance(n, ast.Call) for n in ast.walk(node.annotation)
            ):
                self.add(node, "annotation", "annotations may not call anything")
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n for t in targets for n in _target_names(t)]
                if not all(_simple_target(t) for t in targets):
                    self.add(node, "module-level", "module-level assignments may only bind names")
                elif not self._constant_expr(node.value, constants):
                    self.add(
                        node,
                        "module-level",
                        "module-level values must be constants (literals, tuples of literals, "
                        "arithmetic on them); compute anything else inside a function",
                    )
                constants.update(names)
                continue
            kind = "class definitions" if isinstance(node, ast.ClassDef) else "statements"
            self.add(
                node,
                "module-level",
                f"{kind} are not allowed at module level ({type(node).__name__}); the module "
                "may hold only imports, constants and function definitions",
            )
        fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == FUNCTION_NAME]
        if not fns:
            self.add(
                tree,
                "signature",
                f"no module-level function `{FUNCTION_NAME}({', '.join(ARGUMENTS)})`",
            )
        for fn in fns:
            a = fn.args
            params = tuple(x.arg for x in a.args)
            if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or params != ARGUMENTS:
                self.add(
                    fn,
                    "signature",
                    f"`{FUNCTION_NAME}` must take exactly the positional arguments "
                    f"({', '.join(ARGUMENTS)})",
                )

    def _constant_expr(self, node: ast.expr, constants: set[str]) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return all(self._constant_expr(e, constants) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(
                k is not None and self._constant_expr(k, constants) for k in node.keys
            ) and all(self._constant_expr(v, constants) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            return self._constant_expr(node.operand, constants)
        if isinstance(node, ast.BinOp):
            return self._constant_expr(node.left, constants) and self._constant_expr(
                node.right, constants
            )
        if isinstance(node, ast.Name):
            return node.id in constants
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node.value.id in self.modules  # np.pi, math.e (the attribute is checked later)
        return False

    def _check_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in MODULES:
                    self.add(
                        node,
                        "import",
                        f"`import {a.name}` is not allowed; only `import numpy as np` and "
                        "`import math` are",
                    )
                else:
                    self.modules[a.asname or a.name] = MODULES[a.name]
            return
        if node.module != "math" or node.level:
            hint = " (use `np.NAME` after `import numpy as np`)" if node.module == "numpy" else ""
            self.add(
                node,
                "import",
                f"`from {'.' * node.level}{node.module or ''} import ...` is not allowed{hint}; "
                "only `from math import ...` is",
            )
            return
        for a in node.names:
            if a.name == "*":
                self.add(node, "import", "`from math import *` is not allowed; name what you use")
            elif a.name not in MATH_NAMES:
                self.add(node, "import", f"`math` has no public name `{a.name}`")

    def check_names(self, tree: ast.Module) -> None:
        """One rule for every identifier the syntax holds as a string, whatever the node
        (names, attributes, parameters, keywords, imports, match patterns, ``global``): no
        dunder. And one rule for every attribute name, read by ``.NAME`` or by a match
        class pattern: nothing private, no file or pointer access, no introspection."""
        for node, name in ast_tools.identifiers(tree):
            if any(part.startswith("__") for part in name.split(".")):  # dotted import names
                self.add(node, "dunder", f"dunder/mangled name `{name}` is not allowed")
        for node, attr in ast_tools.attribute_names(tree):
            if attr.startswith("_") and not attr.startswith("__"):
                self.add(node, "private-attribute", f"private attribute `.{attr}` is not allowed")
            if attr in BAD_ATTRIBUTES:
                self.add(node, "attribute", f"`.{attr}` is not allowed: {BAD_ATTRIBUTES[attr]}")
            elif attr.startswith(INTROSPECTION_PREFIXES):
                self.add(node, "attribute", f"`.{attr}` looks like frame/code introspection")

    # --- node rules --------------------------------------------------------------------

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        self.add(
            node,
            "match-class",
            "class patterns in `match` (`case C(...)`) are not allowed: they read attributes "
            "by name; compare values instead",
        )
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.add(
                node, "forbidden-name", f"`{node.id}` is not allowed: {FORBIDDEN_NAMES[node.id]}"
            )
        elif node.id in self.modules:
            if not isinstance(node.ctx, ast.Load):
                self.add(node, "module-alias", f"`{node.id}` names a module and may not be rebound")
            elif id(node) not in self._attribute_bases:
                self.add(
                    node,
                    "module-alias",
                    f"the module `{node.id}` may only be used as `{node.id}.NAME`, not passed, "
                    "stored or aliased",
                )
        elif (
            isinstance(node.ctx, ast.Load)
            and node.id not in self.bound
            and node.id not in SAFE_BUILTINS
            and not node.id.startswith("__")
        ):
            self.add(node, "unknown-name", f"`{node.id}` is not defined and is not a safe builtin")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        base = node.value
        if not isinstance(node.ctx, ast.Load):
            self.add(
                node,
                "attribute",
                f"assigning or deleting an attribute (`.{attr}`) is not allowed; build new "
                "values instead",
            )
        if isinstance(base, ast.Name) and base.id in self.modules:
            self._attribute_bases.add(id(base))
            self._check_module_attribute(node, self.modules[base.id], attr, base.id)
        elif (
            isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name)
            and self.modules.get(base.value.id) == "numpy"
            and base.attr == "linalg"
        ):
            self._attribute_bases.add(id(base))
            self._attribute_bases.add(id(base.value))
            if attr not in LINALG_ALLOWED:
                self.add(
                    node,
                    "numpy-attribute",
                    f"`{base.value.id}.linalg.{attr}` is not on the reviewed list; allowed: "
                    + ", ".join(sorted(LINALG_ALLOWED)),
                )
        elif attr not in VALUE_ATTRIBUTES and not refused_by_name(attr):
            self.add(node, "attribute", value_attribute_message(attr))
        self.generic_visit(node)

    def _check_module_attribute(
        self, node: ast.Attribute, module: str, attr: str, alias: str
    ) -> None:
        if module == "math":
            if attr not in MATH_NAMES:
                self.add(node, "math-attribute", f"`math` has no public name `{attr}`")
            return
        if attr == "linalg":
            if id(node) not in self._attribute_bases:
                self.add(
                    node,
                    "module-alias",
                    f"`{alias}.linalg` may only be used as `{alias}.linalg.NAME`",
                )
            return
        if attr not in NUMPY_ALLOWED:
            why = " (non-deterministic)" if attr == "random" else ""
            self.add(
                node,
                "numpy-attribute",
                f"`{alias}.{attr}` is not on the reviewed list of numpy names{why}; use "
                "elementwise maths, reductions and array functions",
            )

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.decorator_list:
            self.add(node, "decorator", f"decorators are not allowed (on `{node.name}`)")
        self._check_arguments(node, node.args, f"`{node.name}`")
        for ann in [node.returns, *(a.annotation for a in _all_args(node.args))]:
            if ann is not None and any(isinstance(n, ast.Call) for n in ast.walk(ann)):
                self.add(ann, "annotation", "annotations may not call anything")
        self.generic_visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        if node.args.defaults or any(d is not None for d in node.args.kw_defaults):
            self.add(node, "lambda-default", "lambdas may not have default values")
        self.generic_visit(node)

    def _check_arguments(self, node: ast.AST, args: ast.arguments, where: str) -> None:
        for a in _all_args(args):
            if a.arg in self.modules:
                self.add(a, "module-alias", f"argument `{a.arg}` shadows a module name")
        for d in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            if not _literal(d):
                self.add(
                    d,
                    "default-value",
                    f"default values of {where} must be literal constants (evaluated at "
                    "definition time)",
                )

    def _forbid(self, node: ast.AST, what: str) -> None:
        self.add(node, "statement", f"{what} is not allowed in reward code")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._forbid(node, "`class`")
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._forbid(node, "`async def`")
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        self._forbid(node, "`with`")
        self.generic_visit(node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._forbid(node, "`async with`")
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._forbid(node, "`async for`")
        self.generic_visit(node)

    def visit_Await(self, node: ast.Await) -> None:
        self._forbid(node, "`await`")
        self.generic_visit(node)

    def visit_Yield(self, node: ast.Yield) -> None:
        self._forbid(node, "`yield`")
        self.generic_visit(node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self._forbid(node, "`yield from`")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self._forbid(node, "`global`")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._forbid(node, "`nonlocal`")

    def visit_Try(self, node: ast.Try) -> None:
        if node.finalbody:
            self._forbid(node, "`try ... finally`")
        self.generic_visit(node)

    def visit_TryStar(self, node: ast.AST) -> None:
        self._forbid(node, "`try ... except*`")
        self.generic_visit(node)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    out = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


def _literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _literal(node.operand)
    if isinstance(node, ast.Tuple):
        return all(_literal(e) for e in node.elts)
    return False


def _simple_target(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    return isinstance(target, ast.Tuple | ast.List) and all(_simple_target(e) for e in target.elts)


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for e in target.elts for n in _target_names(e)]
    return []
