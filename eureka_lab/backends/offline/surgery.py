"""Surgery on term programs: moving terms between programs with everything they depend on
(:func:`transplant`), and removing what no term uses any more (:func:`prune`)."""

from __future__ import annotations

import ast

from eureka_lab.backends.offline.program import COMPONENTS, FUNCTION_NAME, TOTAL, Program
from eureka_lab.core.ast_tools import all_args, bound, fresh, names_in, rename, used


def prune(prog: Program) -> Program:
    """Remove body assignments and module-level definitions nothing uses."""
    needed: set[str] = set()
    for _, e in prog.terms:
        needed |= used(e)
    kept: list[ast.stmt] = []
    for s in reversed(prog.pre):
        simple = isinstance(s, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        if simple and not (bound(s) & needed):
            continue
        kept.append(s)
        needed |= used(s)
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
                    others |= used(t)
            if not (bound(s) & others):
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
    exprs = [e for e in (donor.term(n) for n in names) if e is not None]
    assert len(exprs) == len(names)
    pre_idx, mod_stmts = _slice(donor, exprs)
    taken = _all_names(out) | _all_names(donor)
    mapping: dict[str, str] = {}

    # Module level, dependencies first.
    recv_by_dump = {ast.dump(s) for s in out.header}
    pending = list(mod_stmts)
    done: set[str] = set()
    new_header: list[ast.stmt] = []
    recv_bound = set().union(*(bound(s) for s in out.header)) if out.header else set()
    pending_bound = set().union(*(bound(s) for s in pending)) if pending else set()
    while pending:
        ready = next(
            (s for s in pending if not ((used(s) & pending_bound) - done - bound(s))),
            pending[0],
        )
        pending.remove(ready)
        binds = bound(ready)
        done |= binds
        cand = rename(ready, mapping)
        if ast.dump(cand) in recv_by_dump:
            continue  # the receiver has the very same definition: share it
        for b in sorted(binds):
            if b in recv_bound or b in _all_names(out) or mapping.get(b, b) != b:
                new = fresh(b, taken)
                taken.add(new)
                mapping[b] = new
        new_header.append(rename(ready, mapping))

    # Body statements, in order.
    recv_defs: dict[str, list[str]] = {}
    for s in out.pre:
        for b in bound(s):
            recv_defs.setdefault(b, []).append(ast.dump(s))
    donor_defs: dict[str, int] = {}
    for i in pre_idx:
        for b in bound(donor.pre[i]):
            donor_defs[b] = donor_defs.get(b, 0) + 1
    recv_names = _all_names(out)
    decided: set[str] = set()
    new_pre: list[ast.stmt] = []
    for i in pre_idx:
        s = donor.pre[i]
        binds = bound(s)
        cand = rename(s, mapping)
        undecided = binds - decided
        share = bool(undecided) and all(
            donor_defs.get(b) == 1 and recv_defs.get(b) == [ast.dump(cand)] for b in undecided
        )
        decided |= binds
        if share:
            continue
        for b in sorted(undecided):
            if b in recv_names or b in mapping.values():
                new = fresh(b, taken)
                taken.add(new)
                mapping[b] = new
        new_pre.append(rename(s, mapping))

    out.before = out.before + new_header
    out.pre = out.pre + new_pre
    keys = {k for k, _ in out.terms}
    given: list[str] = []
    for e, want in zip(exprs, as_names or names, strict=True):
        key = want if want not in keys else fresh(want, keys)
        keys.add(key)
        out.terms.append((key, rename(e, mapping)))
        given.append(key)
    return out, given


def _all_names(prog: Program) -> set[str]:
    nodes: list[ast.AST] = [*prog.header, prog.func, *prog.pre, *(e for _, e in prog.terms)]
    return {FUNCTION_NAME, COMPONENTS, TOTAL} | names_in(nodes)


def _slice(prog: Program, exprs: list[ast.expr]) -> tuple[list[int], list[ast.stmt]]:
    """The body statements (indices) and module-level statements ``exprs`` depend on."""
    needed: set[str] = set()
    for e in exprs:
        needed |= used(e)
    pre_idx: list[int] = []
    for i in range(len(prog.pre) - 1, -1, -1):
        if bound(prog.pre[i]) & needed:
            pre_idx.append(i)
            needed |= used(prog.pre[i])
    pre_idx.reverse()
    local = {a.arg for a in all_args(prog.func.args)}
    for s in prog.pre:
        local |= bound(s)
    wanted = needed - local
    chosen: list[ast.stmt] = []
    header = prog.header
    while True:
        new = [s for s in header if bound(s) & wanted and not any(s is c for c in chosen)]
        if not new:
            break
        for s in new:
            chosen.append(s)
            wanted |= used(s)
    chosen = [s for s in header if any(s is c for c in chosen)]  # file order
    return pre_idx, chosen
