"""An LLM-free backend: evolutionary search over reward programs in the canonical term form.

It is the quick start's engine (no network, no key) and the baseline a model must beat. It
reads only ``prompt.evidence``: the task's seed rewards, every scored candidate with its
fitness and per-component training statistics, and (for repair requests) the failed code.

Programs are handled as ASTs in the canonical form the seeds are written in::

    <module-level imports, constants, helper functions>
    def compute_reward(obs, action, next_obs, info):
        <intermediate assignments>
        components = {"name": weight * expr, ...}
        total = sum(components.values())
        return total, components

Operators: ``mutate`` (log-normal factors on term weights and float constants), ``drop``
(a term, never the last), ``add`` (a term from a seed or an earlier candidate, with the
assignments and module-level helpers it depends on, clashing names renamed), ``crossover``
(terms of two parents) and ``rescale`` (a component that dwarfs the others). Training
statistics bias the choices: a component that stays constant over training is more likely
to be dropped or re-weighted. Everything is deterministic given ``settings.seed`` and the
prompt's key and iteration.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from eureka_lab.backends import BackendSettings
from eureka_lab.backends.base import Completion, Evidence, Prompt, Usage

FUNCTION_NAME = "compute_reward"
COMPONENTS = "components"
TOTAL = "total"

NO_SEEDS_ERROR = (
    "the offline backend needs seed rewards: add hand-written reward programs to the task's "
    "`seed_rewards` field (in the canonical term form: `components = {...}`, "
    "`total = sum(components.values())`, `return total, components`), or use an LLM backend"
)

_OPS = ("mutate", "drop", "add", "crossover")
_OP_PROBS = (0.4, 0.15, 0.2, 0.25)
_CONSTANT_BIAS = 4.0
_MAX_ATTEMPTS = 16


# --------------------------------------------------------------------------- programs


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
            before=_copy(self.before),
            func=self.func,
            after=_copy(self.after),
            pre=_copy(self.pre),
            terms=[(k, _copy(e)) for k, e in self.terms],
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
        return ast.unparse(ast.fix_missing_locations(_copy(mod))) + "\n"


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
    last = body[-1] if body else None
    if (  # ``return total, {"a": ..., ...}``: the dict is the components
        isinstance(last, ast.Return)
        and isinstance(last.value, ast.Tuple)
        and len(last.value.elts) == 2
        and _str_dict(last.value.elts[1])
    ):
        d = last.value.elts[1]
        assert isinstance(d, ast.Dict)
        return Program(
            before=tree.body[:idx],
            func=func,
            after=tree.body[idx + 1 :],
            pre=body[:-1],
            terms=list({k.value: v for k, v in zip(d.keys, d.values, strict=True)}.items()),  # type: ignore[union-attr]
        )
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
    var = s.targets[0].id  # type: ignore[union-attr]
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
            and _bound(r)
            and var not in _bound(r)
        ):
            return None
    terms: dict[str, ast.expr] = {}
    for k, v in zip(s.value.keys, s.value.values, strict=True):  # type: ignore[union-attr]
        terms[k.value] = v  # type: ignore[union-attr]
    return Program(
        before=tree.body[:idx],
        func=func,
        after=tree.body[idx + 1 :],
        pre=body[:j],
        terms=list(terms.items()),
    )


def _str_dict(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Dict)
        and bool(node.keys)
        and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys)
    )


def normalise(source: str) -> str:
    """A key that is equal for programs that differ only in formatting and comments."""
    try:
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return source.strip()


# --------------------------------------------------------------------------- names


def _scoped(node: ast.AST) -> set[str]:
    """Names bound inside comprehensions and lambdas within ``node``."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.comprehension):
            out |= {m.id for m in ast.walk(n.target) if isinstance(m, ast.Name)}
        elif isinstance(n, ast.Lambda):
            out |= {a.arg for a in _all_args(n.args)}
        elif isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
            out.add(n.target.id)
    return out


def _all_args(args: ast.arguments) -> list[ast.arg]:
    out = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


def _locals(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    out = {a.arg for a in _all_args(fn.args)}
    for s in fn.body:
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                out.add(n.id)
    return out


def _used(node: ast.AST) -> set[str]:
    """Free names ``node`` reads."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        loads = {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        return loads - _locals(node)
    loads = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    return loads - _scoped(node)


def _bound(stmt: ast.stmt) -> set[str]:
    """Names a statement binds at its own level."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in stmt.names}
    out = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return out - _scoped(stmt)


def _all_names(prog: Program) -> set[str]:
    out: set[str] = {FUNCTION_NAME, COMPONENTS, TOTAL}
    nodes: list[ast.AST] = [*prog.header, prog.func, *prog.pre, *(e for _, e in prog.terms)]
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


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.m = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.m.get(node.id, node.id)
        return node

    def visit_alias(self, node: ast.alias) -> ast.alias:
        bound = node.asname or node.name
        if bound in self.m:
            node.asname = self.m[bound]
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
        local = {a.arg for a in _all_args(node.args)}
        node.body = _Renamer({k: v for k, v in self.m.items() if k not in local}).visit(node.body)
        return node


def _copy(node: Any) -> Any:
    """A deep copy of an AST (much faster than copy.deepcopy)."""
    if isinstance(node, ast.AST):
        new = node.__class__()
        for f in (*node._fields, *node._attributes):
            if hasattr(node, f):
                setattr(new, f, _copy(getattr(node, f)))
        return new
    if isinstance(node, list):
        return [_copy(x) for x in node]
    return node


def _rename(node: Any, mapping: dict[str, str]) -> Any:
    node = _copy(node)
    return _Renamer(mapping).visit(node) if mapping else node


def _fresh(name: str, taken: set[str]) -> str:
    k = 2
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"


def _dump(node: ast.AST) -> str:
    return ast.dump(node)


# --------------------------------------------------------------------------- dependencies


def _slice(prog: Program, exprs: list[ast.expr]) -> tuple[list[int], list[ast.stmt]]:
    """The body statements (indices) and module-level statements ``exprs`` depend on."""
    needed: set[str] = set()
    for e in exprs:
        needed |= _used(e)
    pre_idx: list[int] = []
    for i in range(len(prog.pre) - 1, -1, -1):
        if _bound(prog.pre[i]) & needed:
            pre_idx.append(i)
            needed |= _used(prog.pre[i])
    pre_idx.reverse()
    local = {a.arg for a in _all_args(prog.func.args)}
    for s in prog.pre:
        local |= _bound(s)
    wanted = needed - local
    chosen: list[ast.stmt] = []
    header = prog.header
    while True:
        new = [s for s in header if _bound(s) & wanted and not any(s is c for c in chosen)]
        if not new:
            break
        for s in new:
            chosen.append(s)
            wanted |= _used(s)
    chosen = [s for s in header if any(s is c for c in chosen)]  # file order
    return pre_idx, chosen


def prune(prog: Program) -> Program:
    """Remove body assignments and module-level definitions nothing uses."""
    needed: set[str] = set()
    for _, e in prog.terms:
        needed |= _used(e)
    kept: list[ast.stmt] = []
    for s in reversed(prog.pre):
        simple = isinstance(s, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        if simple and not (_bound(s) & needed):
            continue
        kept.append(s)
        needed |= _used(s)
    prog.pre = kept[::-1]
    prunable = (ast.FunctionDef, ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)
    while True:
        # names a module statement uses only by itself do not keep it alive
        drop = []
        for s in prog.header:
            if not isinstance(s, prunable):
                continue
            others: set[str] = set(needed)
            for t in prog.header:
                if t is not s:
                    others |= _used(t)
            if not (_bound(s) & others):
                drop.append(s)
        if not drop:
            return prog
        prog.before = [s for s in prog.before if not any(s is d for d in drop)]
        prog.after = [s for s in prog.after if not any(s is d for d in drop)]


def transplant(
    receiver: Program, donor: Program, names: list[str], as_names: list[str] | None = None
) -> tuple[Program, list[str]]:
    """Copy the ``names`` terms of ``donor`` into a clone of ``receiver`` with everything
    they depend on; names clashing with a different definition in the receiver are renamed.

    Returns the new program and the component names the terms got there.
    """
    out = receiver.clone()
    exprs = [donor.term(n) for n in names]
    assert all(e is not None for e in exprs)
    pre_idx, mod_stmts = _slice(donor, exprs)  # type: ignore[arg-type]
    taken = _all_names(out) | _all_names(donor)
    mapping: dict[str, str] = {}

    # Module level, dependencies first.
    recv_by_dump = {_dump(s) for s in out.header}
    pending = list(mod_stmts)
    done: set[str] = set()
    new_header: list[ast.stmt] = []
    recv_bound = set().union(*(_bound(s) for s in out.header)) if out.header else set()
    pending_bound = set().union(*(_bound(s) for s in pending)) if pending else set()
    while pending:
        ready = next(
            (s for s in pending if not ((_used(s) & pending_bound) - done - _bound(s))),
            pending[0],
        )
        pending.remove(ready)
        bound = _bound(ready)
        done |= bound
        cand = _rename(ready, mapping)
        if _dump(cand) in recv_by_dump:
            continue  # the receiver has the very same definition: share it
        for b in sorted(bound):
            if b in recv_bound or b in _all_names(out) or mapping.get(b, b) != b:
                new = _fresh(b, taken)
                taken.add(new)
                mapping[b] = new
        new_header.append(_rename(ready, mapping))

    # Body statements, in order.
    recv_defs: dict[str, list[str]] = {}
    for s in out.pre:
        for b in _bound(s):
            recv_defs.setdefault(b, []).append(_dump(s))
    donor_defs: dict[str, int] = {}
    for i in pre_idx:
        for b in _bound(donor.pre[i]):
            donor_defs[b] = donor_defs.get(b, 0) + 1
    recv_names = _all_names(out)
    decided: set[str] = set()
    new_pre: list[ast.stmt] = []
    for i in pre_idx:
        s = donor.pre[i]
        bound = _bound(s)
        cand = _rename(s, mapping)
        undecided = bound - decided
        share = bool(undecided) and all(
            donor_defs.get(b) == 1 and recv_defs.get(b) == [_dump(cand)] for b in undecided
        )
        decided |= bound
        if share:
            continue
        for b in sorted(undecided):
            if b in recv_names or b in mapping.values():
                new = _fresh(b, taken)
                taken.add(new)
                mapping[b] = new
        new_pre.append(_rename(s, mapping))

    out.before = out.before + new_header
    out.pre = out.pre + new_pre
    keys = {k for k, _ in out.terms}
    given: list[str] = []
    for e, want in zip(exprs, as_names or names, strict=True):
        key = want if want not in keys else _fresh(want, keys)
        keys.add(key)
        out.terms.append((key, _rename(e, mapping)))
        given.append(key)
    return out, given


# --------------------------------------------------------------------------- weights


def _is_num(node: ast.AST) -> bool:
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
                return side  # type: ignore[return-value]
            if (
                isinstance(side, ast.UnaryOp)
                and isinstance(side.op, ast.USub)
                and _is_num(side.operand)
            ):
                return side.operand  # type: ignore[return-value]
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
        node.value = _round(float(node.value) * factor)


def _fmt(f: float) -> str:
    return f"x{f:.2g}" if f < 10 else f"x{f:.0f}"


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class _Stats:
    constant: frozenset[str]
    dominant: dict[str, float]
    """Dominating component -> rescale factor that brings it near the others."""


def component_stats(components: dict[str, list[float]]) -> _Stats:
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
    return _Stats(frozenset(constant), dominant)


# --------------------------------------------------------------------------- backend


@dataclass
class _Source:
    label: str
    prog: Program
    fitness: float | None = None
    stats: _Stats = _Stats(frozenset(), {})


@dataclass
class _Child:
    prog: Program
    phrases: list[str]
    ops: list[str]
    parents: list[str]


class OfflineBackend:
    """Program search over the seed rewards and scored candidates; no model, no network."""

    name = "offline"

    def __init__(self, settings: BackendSettings | None = None, arg: str | None = None) -> None:
        self.settings = settings or BackendSettings()

    # ---- entry point

    def complete(self, prompt: Prompt, n: int) -> list[Completion]:
        ev = prompt.evidence or Evidence(iteration=prompt.iteration)
        seed_codes = ev.seeds or self.settings.seeds
        seeds = [
            _Source(f"seed {i + 1}", p)
            for i, code in enumerate(seed_codes)
            if (p := parse_program(code)) is not None
        ]
        scored = [
            _Source(
                f"candidate {i + 1}",
                p,
                sc.fitness,
                component_stats(sc.components),
            )
            for i, sc in enumerate(ev.scored)
            if sc.fitness is not None
            and math.isfinite(sc.fitness)
            and (p := parse_program(sc.code)) is not None
        ]
        if not seeds and not scored:
            why = NO_SEEDS_ERROR
            if seed_codes:
                why = (
                    "none of the task's `seed_rewards` is in the canonical term form the "
                    "offline backend can edit (`components = {...}` dict literal, then "
                    "`total = sum(components.values())` and `return total, components`)"
                )
            return [Completion(None, error=why, model=self.name) for _ in range(n)]

        rng = np.random.default_rng(self._entropy(prompt, ev))
        seen = {normalise(sc.code) for sc in ev.scored}
        if ev.failed_code:
            seen.add(normalise(ev.failed_code))
        out: list[Completion] = []
        verbatim = 0
        for i in range(n):
            child: _Child | None = None
            code = ""
            for attempt in range(_MAX_ATTEMPTS):
                boost = 1.0 + attempt / 4
                if prompt.purpose == "repair":
                    child = self._repair(rng, seeds, scored, boost)
                elif not scored:
                    if verbatim < len(seeds) and i < max(1, n // 4) and attempt == 0:
                        child = _Child(
                            seeds[verbatim].prog.clone(), [], ["seed"], [seeds[verbatim].label]
                        )
                        verbatim += 1
                    else:
                        child = self._from_seeds(rng, seeds, boost)
                else:
                    child = self._evolve(rng, seeds, scored, boost)
                code = _render_checked(child.prog)
                if code is not None and normalise(code) not in seen:
                    break
            assert child is not None
            if code is None:
                code = seeds[0].prog.render() if seeds else scored[0].prog.render()
            seen.add(normalise(code))
            out.append(self._completion(child, code, prompt, ev))
        return out

    def _entropy(self, prompt: Prompt, ev: Evidence) -> int:
        text = (
            f"{self.settings.seed}|{prompt.key}|{prompt.iteration}|{ev.iteration}|{prompt.purpose}"
        )
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")

    def _completion(self, child: _Child, code: str, prompt: Prompt, ev: Evidence) -> Completion:
        sentence = _sentence(child)
        text = f"{sentence}\n\n```python\n{code}```\n"
        meta = {
            "operators": child.ops,
            "parents": child.parents,
            "iteration": ev.iteration,
        }
        return Completion(text, usage=Usage(), model=self.name, meta=meta)

    # ---- strategies

    @property
    def _sigma(self) -> float:
        return 0.5 * max(self.settings.temperature, 0.1)

    def _from_seeds(self, rng: np.random.Generator, seeds: list[_Source], boost: float) -> _Child:
        base = seeds[int(rng.integers(len(seeds)))]
        prog = base.prog.clone()
        phrases: list[str] = []
        ops = ["combine"]
        parents = [base.label]
        if len(prog.terms) > 1:
            dropped = [k for k, _ in prog.terms if rng.random() < 0.2]
            dropped = dropped[: len(prog.terms) - 1]
            if dropped:
                prog.terms = [(k, e) for k, e in prog.terms if k not in dropped]
                prog = prune(prog)
                phrases.append(f"dropped {_ticks(dropped)}")
        for donor in seeds:
            if donor is base:
                continue
            have = {k for k, _ in prog.terms}
            new = [k for k, _ in donor.prog.terms if k not in have and rng.random() < 0.5]
            if new:
                prog, keys = transplant(prog, donor.prog, new)
                phrases.append(f"added {_ticks(keys)} from {donor.label}")
                parents.append(donor.label)
        factors = []
        for k, _ in prog.terms:
            f = self._factor(rng, 0.3 * boost)
            _scale_term(prog, k, f)
            factors.append(f"`{k}` ({_fmt(f)})")
        phrases.append("jittered the weights of " + _join(factors))
        return _Child(
            prune(prog), [f"combined seed terms from {base.label}:", *phrases], ops, parents
        )

    def _repair(
        self, rng: np.random.Generator, seeds: list[_Source], scored: list[_Source], boost: float
    ) -> _Child:
        if scored:
            parent = max(scored, key=lambda s: s.fitness)  # type: ignore[arg-type, return-value]
        else:
            parent = seeds[int(rng.integers(len(seeds)))]
        prog = parent.prog.clone()
        phrases, ops = self._mutate(rng, prog, parent.stats, boost)
        return _Child(
            prune(prog),
            [f"no model is available to repair code, so from {parent.label}:", *phrases],
            ["repair-fallback", *ops],
            [parent.label],
        )

    def _evolve(
        self, rng: np.random.Generator, seeds: list[_Source], scored: list[_Source], boost: float
    ) -> _Child:
        parent = _tournament(rng, scored)
        prog = parent.prog.clone()
        stats = parent.stats
        phrases: list[str] = []
        ops: list[str] = []
        parents = [parent.label]

        live_dom = {k: f for k, f in stats.dominant.items() if prog.term(k) is not None}
        if live_dom and rng.random() < 0.8:
            parts = []
            for k, f in live_dom.items():
                f = _round(f * math.exp(rng.normal(0, 0.2)))
                _scale_term(prog, k, f)
                parts.append(f"`{k}` ({_fmt(f)})")
            phrases.append("rescaled dominant " + _join(parts))
            ops.append("rescale")

        n_ops = 1 if rng.random() < 0.65 else 2
        if ops:
            n_ops -= rng.random() < 0.5
        chosen: list[str] = []
        p = np.asarray(_OP_PROBS)
        if stats.constant & {k for k, _ in prog.terms}:
            p = p * np.asarray([1.5, 2.0, 1.0, 1.0])  # favour fixing the flat terms
        while len(chosen) < n_ops:
            op = _OPS[int(rng.choice(len(_OPS), p=p / p.sum()))]
            if op not in chosen:
                chosen.append(op)
        donors = [s for s in [*scored, *seeds] if s is not parent]
        for op in chosen:
            if op == "drop" and len(prog.terms) > 1:
                k = _pick_term(rng, prog, stats)
                prog.terms = [(t, e) for t, e in prog.terms if t != k]
                phrases.append(f"dropped term `{k}`" + _flat_note(k, stats))
                ops.append("drop")
            elif op == "add" and donors:
                res = self._add(rng, prog, donors)
                if res is None:
                    continue
                prog, phrase, label = res
                phrases.append(phrase)
                ops.append("add")
                parents.append(label)
            elif op == "crossover" and donors:
                other = _tournament(rng, donors)
                res2 = _crossover(rng, prog, other.prog)
                if res2 is None:
                    continue
                prog, phrase = res2
                phrases.append(f"{phrase} {other.label}")
                ops.append("crossover")
                parents.append(other.label)
            else:
                ph, o = self._mutate(rng, prog, stats, boost)
                phrases += ph
                ops += o
        if not ops or boost > 1.0:
            ph, o = self._mutate(rng, prog, stats, boost)
            phrases += ph
            ops += o
        fit = f" (fitness {parent.fitness:.4g})" if parent.fitness is not None else ""
        return _Child(prune(prog), [f"from {parent.label}{fit}:", *phrases], ops, parents)

    def _factor(self, rng: np.random.Generator, sigma: float) -> float:
        z = rng.normal(0.0, sigma)
        if abs(z) < 0.1:
            z = math.copysign(0.1 + abs(z), z if z != 0 else 1.0)
        return math.exp(z)

    def _mutate(
        self, rng: np.random.Generator, prog: Program, stats: _Stats, boost: float
    ) -> tuple[list[str], list[str]]:
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
            bound = _bound(s)
            others.append((f"`{min(bound)}`" if len(bound) == 1 else "a constant", s))
        for label, node in others:
            for c in ast.walk(node):
                if (
                    isinstance(c, ast.Constant)
                    and isinstance(c.value, float)
                    and c.value != 0.0
                    and id(c) not in weight_ids
                ):
                    items.append((label, c, "", 0.5))
        weights = np.asarray([it[3] for it in items])
        k = min(len(items), 1 + int(rng.binomial(2, 0.3)) + int(boost > 2))
        idx = rng.choice(len(items), size=k, replace=False, p=weights / weights.sum())
        term_parts, const_parts = [], []
        for j in sorted(int(x) for x in idx):
            label, node, term, _ = items[j]
            f = self._factor(rng, self._sigma * boost)
            if node is None:
                _scale_term(prog, term, f)
                term_parts.append(f"{label} ({_fmt(f)})" + _flat_note(term, stats))
            else:
                node.value = _round(node.value * f)
                const_parts.append(f"{label} ({_fmt(f)})")
        phrases = []
        if term_parts:
            phrases.append("mutated the weight of " + _join(term_parts))
        if const_parts:
            phrases.append("mutated constant " + _join(const_parts))
        return phrases, ["mutate"]

    def _add(
        self, rng: np.random.Generator, prog: Program, donors: list[_Source]
    ) -> tuple[Program, str, str] | None:
        have = {k for k, _ in prog.terms}
        have_exprs = {_dump(e) for _, e in prog.terms}
        options = [
            (d, k)
            for d in donors
            for k, e in d.prog.terms
            if k not in have and _dump(e) not in have_exprs
        ]
        if not options:
            return None
        d, k = options[int(rng.integers(len(options)))]
        new, keys = transplant(prog, d.prog, [k])
        return new, f"added term {_ticks(keys)} from {d.label}", d.label


# --------------------------------------------------------------------------- helpers


def _crossover(rng: np.random.Generator, a: Program, b: Program) -> tuple[Program, str] | None:
    """Keep some of ``a``'s terms and take some of ``b``'s (swapping same-named ones)."""
    a_keys = [k for k, _ in a.terms]
    b_keys = [k for k, _ in b.terms]
    b_new = [k for k in b_keys if k not in a_keys]
    shared = [k for k in b_keys if k in a_keys and _dump(a.term(k)) != _dump(b.term(k))]  # type: ignore[arg-type]
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
    return child, f"crossover: kept {_ticks(keep)}, took {_ticks(take)} from"


def _tournament(rng: np.random.Generator, pool: list[_Source], size: int = 3) -> _Source:
    with_fit = [s for s in pool if s.fitness is not None]
    if not with_fit:
        return pool[int(rng.integers(len(pool)))]
    idx = rng.choice(len(with_fit), size=min(size, len(with_fit)), replace=False)
    return max((with_fit[int(i)] for i in idx), key=lambda s: s.fitness)  # type: ignore[arg-type, return-value]


def _pick_term(rng: np.random.Generator, prog: Program, stats: _Stats) -> str:
    keys = [k for k, _ in prog.terms]
    w = np.asarray([_CONSTANT_BIAS if k in stats.constant else 1.0 for k in keys])
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _flat_note(term: str, stats: _Stats) -> str:
    return " (flat during training)" if term in stats.constant else ""


def _render_checked(prog: Program) -> str | None:
    try:
        code = prog.render()
        compile(code, "<offline>", "exec")
    except (SyntaxError, ValueError, TypeError):
        return None
    return code


def _ticks(keys: list[str]) -> str:
    return _join([f"`{k}`" for k in keys])


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _sentence(child: _Child) -> str:
    if not child.phrases:
        return f"Returned {child.parents[0]} unchanged as a baseline."
    head, rest = child.phrases[0], child.phrases[1:]
    if head.endswith(":"):
        body = head + " " + "; ".join(rest) if rest else head[:-1]
    else:
        body = "; ".join(child.phrases)
    body = body.strip()
    return body[0].upper() + body[1:] + "."


__all__ = ["NO_SEEDS_ERROR", "OfflineBackend", "Program", "parse_program", "prune", "transplant"]
