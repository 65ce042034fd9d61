"""Reward programs in the canonical term form the offline backend edits.

::

    <module-level imports, constants, helper functions>
    def compute_reward(obs, action, next_obs, info):
        <intermediate assignments>
        components = {"name": weight * expr, ...}
        total = sum(components.values())
        return total, components

:func:`parse_program` also accepts ``return total, {"name": ...}`` and a components dict
under another name; :meth:`Program.render` always writes the form above.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from eureka_lab.core.ast_tools import bound, copy_tree, program_key

FUNCTION_NAME = "compute_reward"
COMPONENTS = "components"
TOTAL = "total"


@dataclass
class Program:
    """A reward program split into the parts the operators work on."""

    before: list[ast.stmt]
    """Module-level statements before ``compute_reward`` (imports, constants, helpers)."""
    func: ast.FunctionDef
    """``compute_reward`` itself; its body is rebuilt from ``pre`` and ``terms``."""
    after: list[ast.stmt]
    pre: list[ast.stmt]
    """Statements of the body before the components dict."""
    terms: list[tuple[str, ast.expr]]

    def clone(self) -> Program:
        return Program(
            before=copy_tree(self.before),
            func=self.func,
            after=copy_tree(self.after),
            pre=copy_tree(self.pre),
            terms=[(k, copy_tree(e)) for k, e in self.terms],
        )

    @property
    def header(self) -> list[ast.stmt]:
        return self.before + self.after

    def term(self, name: str) -> ast.expr | None:
        return next((e for k, e in self.terms if k == name), None)

    def set_term(self, name: str, expr: ast.expr) -> None:
        self.terms = [(k, expr if k == name else e) for k, e in self.terms]

    def render(self) -> str:
        func = copy.copy(self.func)
        comp = ast.Dict(
            keys=[ast.Constant(k) for k, _ in self.terms], values=[e for _, e in self.terms]
        )
        tail = ast.parse(f"{TOTAL} = sum({COMPONENTS}.values())\nreturn {TOTAL}, {COMPONENTS}").body
        func.body = [
            *self.pre,
            ast.Assign(targets=[ast.Name(COMPONENTS, ast.Store())], value=comp),
            *tail,
        ]
        mod = ast.Module(body=[*self.before, func, *self.after], type_ignores=[])
        return ast.unparse(ast.fix_missing_locations(copy_tree(mod))) + "\n"


def parse_program(source: str) -> Program | None:
    """Split ``source`` into a :class:`Program`, or None if it is not in the term form."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    idx = next(
        (
            i
            for i, s in enumerate(tree.body)
            if isinstance(s, ast.FunctionDef) and s.name == FUNCTION_NAME
        ),
        None,
    )
    if idx is None:
        return None
    func = tree.body[idx]
    assert isinstance(func, ast.FunctionDef)
    body = func.body
    func = copy.copy(func)
    func.body = []  # rebuilt by render()
    before, after = tree.body[:idx], tree.body[idx + 1 :]
    last = body[-1] if body else None
    if (  # ``return total, {"a": ..., ...}``: the dict is the components
        isinstance(last, ast.Return)
        and isinstance(last.value, ast.Tuple)
        and len(last.value.elts) == 2
        and _str_dict(last.value.elts[1])
    ):
        return Program(before, func, after, pre=body[:-1], terms=_terms(last.value.elts[1]))
    for j in range(len(body) - 1, -1, -1):
        s = body[j]
        if (
            isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and _str_dict(s.value)
        ):
            break
    else:
        return None
    var = s.targets[0].id
    rest = body[j + 1 :]
    if not rest or not isinstance(rest[-1], ast.Return):
        return None
    ret = rest[-1].value
    if not (
        isinstance(ret, ast.Tuple)
        and len(ret.elts) == 2
        and isinstance(ret.elts[1], ast.Name)
        and ret.elts[1].id == var
    ):
        return None
    for r in rest[:-1]:  # only assignments of the total may follow the dict
        if not (
            isinstance(r, (ast.Assign, ast.AugAssign, ast.AnnAssign))
            and bound(r)
            and var not in bound(r)
        ):
            return None
    return Program(before, func, after, pre=body[:j], terms=_terms(s.value))


def normalise(source: str) -> str:
    """A key that is equal for programs that differ only in formatting, comments and
    docstrings: the same identity the loop de-duplicates candidates by."""
    return program_key(source)


def _str_dict(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Dict)
        and bool(node.keys)
        and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys)
    )


def _terms(d: ast.AST) -> list[tuple[str, ast.expr]]:
    """The items of a dict literal with string keys; a repeated key keeps its last value."""
    assert isinstance(d, ast.Dict)
    terms: dict[str, ast.expr] = {}
    for k, v in zip(d.keys, d.values, strict=True):
        assert isinstance(k, ast.Constant) and isinstance(k.value, str)  # checked by _str_dict
        terms[k.value] = v
    return list(terms.items())
