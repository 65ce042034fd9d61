"""The offline backend's operators on term programs, and the training statistics that bias
them. Each draws from the given generator, edits or returns a program, and returns a phrase
saying what it did.

``mutate`` (log-normal factors on term weights and float constants), ``drop`` (a term),
``add_term`` (a term from another program, with what it depends on), ``crossover`` (terms of
two parents), ``rescale`` (a component that dwarfs the others) and ``jitter`` (every weight).
A component that stays constant over training is more likely to be dropped or re-weighted.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

from eureka_lab.backends.offline.program import Program
from eureka_lab.backends.offline.surgery import prune, transplant
from eureka_lab.core.ast_tools import bound

_CONSTANT_BIAS = 4.0


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stats:
    constant: frozenset[str]
    dominant: dict[str, float]
    """Dominating component -> rescale factor that brings it near the others."""


def component_stats(components: dict[str, list[float]]) -> Stats:
    mags: dict[str, float] = {}
    constant: set[str] = set()
    for name, values in components.items():
        v = np.asarray([x for x in values if x is not None], dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        mag = float(np.mean(np.abs(v)))
        mags[name] = mag
        if v.size >= 2 and float(np.ptp(v)) <= 0.05 * mag + 1e-8:
            constant.add(name)
    dominant: dict[str, float] = {}
    if len(mags) >= 2:
        for name, mag in mags.items():
            others = max(m for k, m in mags.items() if k != name)
            if others > 0 and mag > 10 * others:
                dominant[name] = 3 * others / mag
    return Stats(frozenset(constant), dominant)


# --------------------------------------------------------------------------- operators


def mutate(
    rng: np.random.Generator, prog: Program, stats: Stats, sigma: float, boost: float
) -> list[str]:
    """Scale a few weights / float constants in place by log-normal factors."""
    items: list[tuple[str, ast.Constant | None, str, float]] = []
    weight_ids: set[int] = set()
    for k, e in prog.terms:
        node = _weight_node(e)
        if node is not None:
            weight_ids.add(id(node))
        bias = _CONSTANT_BIAS if k in stats.constant else 1.0
        items.append((f"`{k}`", None, k, bias))
    others: list[tuple[str, ast.AST]] = [(f"a constant in `{k}`", e) for k, e in prog.terms]
    assigns = (ast.Assign, ast.AnnAssign, ast.AugAssign)
    for s in [*prog.pre, *(s for s in prog.header if isinstance(s, assigns))]:
        binds = bound(s)
        others.append((f"`{min(binds)}`" if len(binds) == 1 else "a constant", s))
    for label, where in others:
        for c in ast.walk(where):
            if (
                isinstance(c, ast.Constant)
                and isinstance(c.value, float)
                and c.value != 0.0
                and id(c) not in weight_ids
            ):
                items.append((label, c, "", 0.5))
    weights = np.asarray([it[3] for it in items])
    count = min(len(items), 1 + int(rng.binomial(2, 0.3)) + int(boost > 2))
    idx = rng.choice(len(items), size=count, replace=False, p=weights / weights.sum())
    term_parts, const_parts = [], []
    for j in sorted(int(x) for x in idx):
        label, node, term, _ = items[j]
        f = _factor(rng, sigma * boost)
        if node is None:
            _scale_term(prog, term, f)
            term_parts.append(f"{label} ({_fmt(f)})" + _flat_note(term, stats))
        else:
            value = node.value
            assert isinstance(value, float)  # only float constants were picked above
            node.value = _round(value * f)
            const_parts.append(f"{label} ({_fmt(f)})")
    phrases = []
    if term_parts:
        phrases.append("mutated the weight of " + _join(term_parts))
    if const_parts:
        phrases.append("mutated constant " + _join(const_parts))
    return phrases


def drop(rng: np.random.Generator, prog: Program, stats: Stats) -> str:
    """Remove one term in place, flat ones more likely."""
    keys = [k for k, _ in prog.terms]
    w = np.asarray([_CONSTANT_BIAS if k in stats.constant else 1.0 for k in keys])
    k = keys[int(rng.choice(len(keys), p=w / w.sum()))]
    prog.terms = [(t, e) for t, e in prog.terms if t != k]
    return f"dropped term `{k}`" + _flat_note(k, stats)


def add_term(
    rng: np.random.Generator, prog: Program, donors: list[tuple[str, Program]]
) -> tuple[Program, str, str] | None:
    """``prog`` with a new term of one of the labelled ``donors``, the phrase and the label."""
    have = {k for k, _ in prog.terms}
    have_exprs = {ast.dump(e) for _, e in prog.terms}
    options = [
        (label, d, k)
        for label, d in donors
        for k, e in d.terms
        if k not in have and ast.dump(e) not in have_exprs
    ]
    if not options:
        return None
    label, d, k = options[int(rng.integers(len(options)))]
    new, keys = transplant(prog, d, [k])
    return new, f"added term {ticks(keys)} from {label}", label


def crossover(rng: np.random.Generator, a: Program, b: Program) -> tuple[Program, str] | None:
    """Keep some of ``a``'s terms and take some of ``b``'s (swapping same-named ones)."""
    a_keys = [k for k, _ in a.terms]
    b_keys = [k for k, _ in b.terms]
    b_new = [k for k in b_keys if k not in a_keys]
    shared = [k for k in b_keys if k in a_keys and _dump(a, k) != _dump(b, k)]
    pool = b_new + shared
    if not pool:
        return None
    take = [k for k in pool if rng.random() < 0.5] or [pool[int(rng.integers(len(pool)))]]
    swap = [k for k in take if k in a_keys]
    keep = [k for k in a_keys if k not in swap and rng.random() < 0.75]
    if not keep:
        rest = [k for k in a_keys if k not in swap]
        keep = [rest[int(rng.integers(len(rest)))]] if rest else []
    if not keep and swap:  # keep at least one of a's own terms
        swap = swap[:-1]
        take = [k for k in take if k in swap or k not in a_keys]
        keep = [a_keys[int(rng.integers(len(a_keys)))]]
    child = a.clone()
    child.terms = [(k, e) for k, e in child.terms if k in keep]
    child = prune(child)
    if not take:
        return None
    child, _ = transplant(child, b, take)
    # restore a's term order where possible
    order = {k: i for i, k in enumerate(a_keys)}
    child.terms.sort(key=lambda t: order.get(t[0], len(order)))
    return child, f"crossover: kept {ticks(keep)}, took {ticks(take)} from"


def rescale(rng: np.random.Generator, prog: Program, dominant: dict[str, float]) -> str:
    """Scale the ``dominant`` terms in place by about their factors."""
    parts = []
    for k, f in dominant.items():
        f = _round(f * math.exp(rng.normal(0, 0.2)))
        _scale_term(prog, k, f)
        parts.append(f"`{k}` ({_fmt(f)})")
    return "rescaled dominant " + _join(parts)


def jitter(rng: np.random.Generator, prog: Program, sigma: float) -> str:
    """Scale every term's weight in place by a log-normal factor."""
    factors = []
    for k, _ in prog.terms:
        f = _factor(rng, sigma)
        _scale_term(prog, k, f)
        factors.append(f"`{k}` ({_fmt(f)})")
    return "jittered the weights of " + _join(factors)


def ticks(keys: list[str]) -> str:
    """```a`, `b` and `c```."""
    return _join([f"`{k}`" for k in keys])


# --------------------------------------------------------------------------- weights


def _factor(rng: np.random.Generator, sigma: float) -> float:
    z = rng.normal(0.0, sigma)
    if abs(z) < 0.1:
        z = math.copysign(0.1 + abs(z), z if z != 0 else 1.0)
    return math.exp(z)


def _dump(prog: Program, name: str) -> str | None:
    """The term ``name`` of ``prog`` as ``ast.dump`` shows it (None: no such term)."""
    expr = prog.term(name)
    return None if expr is None else ast.dump(expr)


def _is_num(node: ast.AST) -> TypeGuard[ast.Constant]:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    )


def _weight_node(expr: ast.expr) -> ast.Constant | None:
    """The numeric constant a term is multiplied by, if it has one."""
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return _weight_node(expr.operand)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Mult, ast.Div)):
        sides = [expr.left] if isinstance(expr.op, ast.Div) else [expr.left, expr.right]
        for side in sides:
            if _is_num(side):
                return side
            if (
                isinstance(side, ast.UnaryOp)
                and isinstance(side.op, ast.USub)
                and _is_num(side.operand)
            ):
                return side.operand
        if isinstance(expr.left, ast.BinOp):
            return _weight_node(expr.left)
    return None


def _round(v: float) -> float:
    r = float(f"{v:.4g}")
    return r if r != 0.0 else v


def _scale_term(prog: Program, name: str, factor: float) -> None:
    expr = prog.term(name)
    assert expr is not None
    node = _weight_node(expr)
    if node is None or node.value == 0:
        prog.set_term(name, ast.BinOp(ast.Constant(_round(factor)), ast.Mult(), expr))
    else:
        value = node.value
        assert isinstance(value, int | float)  # a weight node is a number
        node.value = _round(float(value) * factor)


def _fmt(f: float) -> str:
    return f"x{f:.2g}" if f < 10 else f"x{f:.0f}"


def _flat_note(term: str, stats: Stats) -> str:
    return " (flat during training)" if term in stats.constant else ""


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
