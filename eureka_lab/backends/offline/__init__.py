"""An LLM-free backend: evolutionary search over reward programs in the canonical term form.

It is the quick start's engine (no network, no key) and the baseline a model must beat. It
reads only ``prompt.evidence``: the task's seed rewards, every scored candidate with its
fitness and per-component training statistics, and (for repair requests) the failed code.

Programs are handled as ASTs in the canonical term form the seeds are written in
(:mod:`eureka_lab.backends.offline.program`, with the surgery that moves terms between them
in :mod:`~eureka_lab.backends.offline.surgery`). Each child comes from a few operators
(:mod:`~eureka_lab.backends.offline.operators`): ``mutate``, ``drop`` (a term, never the
last), ``add`` (a term from a seed or an earlier candidate), ``crossover`` and ``rescale``,
biased by the parent's training statistics. Everything is deterministic given
``settings.seed`` and the prompt's key and iteration.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from eureka_lab.backends import BackendSettings
from eureka_lab.backends.base import Completion, Evidence, Prompt, Usage
from eureka_lab.backends.offline.operators import (
    Stats,
    add_term,
    component_stats,
    crossover,
    drop,
    jitter,
    mutate,
    rescale,
    ticks,
)
from eureka_lab.backends.offline.program import Program, normalise, parse_program
from eureka_lab.backends.offline.surgery import prune, transplant

NO_SEEDS_ERROR = (
    "the offline backend needs seed rewards: add hand-written reward programs to the task's "
    "`seed_rewards` field (in the canonical term form: `components = {...}`, "
    "`total = sum(components.values())`, `return total, components`), or use an LLM backend"
)

_OPS = ("mutate", "drop", "add", "crossover")
_OP_PROBS = (0.4, 0.15, 0.2, 0.25)
_MAX_ATTEMPTS = 16


@dataclass
class _Source:
    label: str
    prog: Program
    fitness: float | None = None
    stats: Stats = Stats(frozenset(), {})


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
            code: str | None = ""
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
                phrases.append(f"dropped {ticks(dropped)}")
        for donor in seeds:
            if donor is base:
                continue
            have = {k for k, _ in prog.terms}
            new = [k for k, _ in donor.prog.terms if k not in have and rng.random() < 0.5]
            if new:
                prog, keys = transplant(prog, donor.prog, new)
                phrases.append(f"added {ticks(keys)} from {donor.label}")
                parents.append(donor.label)
        phrases.append(jitter(rng, prog, 0.3 * boost))
        return _Child(
            prune(prog), [f"combined seed terms from {base.label}:", *phrases], ops, parents
        )

    def _repair(
        self, rng: np.random.Generator, seeds: list[_Source], scored: list[_Source], boost: float
    ) -> _Child:
        parent = max(scored, key=_fitness) if scored else seeds[int(rng.integers(len(seeds)))]
        prog = parent.prog.clone()
        phrases = mutate(rng, prog, parent.stats, self._sigma, boost)
        return _Child(
            prune(prog),
            [f"no model is available to repair code, so from {parent.label}:", *phrases],
            ["repair-fallback", "mutate"],
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
            phrases.append(rescale(rng, prog, live_dom))
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
                phrases.append(drop(rng, prog, stats))
                ops.append("drop")
            elif op == "add" and donors:
                res = add_term(rng, prog, [(d.label, d.prog) for d in donors])
                if res is None:
                    continue
                prog, phrase, label = res
                phrases.append(phrase)
                ops.append("add")
                parents.append(label)
            elif op == "crossover" and donors:
                other = _tournament(rng, donors)
                res2 = crossover(rng, prog, other.prog)
                if res2 is None:
                    continue
                prog, phrase = res2
                phrases.append(f"{phrase} {other.label}")
                ops.append("crossover")
                parents.append(other.label)
            else:
                phrases += mutate(rng, prog, stats, self._sigma, boost)
                ops.append("mutate")
        if not ops or boost > 1.0:
            phrases += mutate(rng, prog, stats, self._sigma, boost)
            ops.append("mutate")
        fit = f" (fitness {parent.fitness:.4g})" if parent.fitness is not None else ""
        return _Child(prune(prog), [f"from {parent.label}{fit}:", *phrases], ops, parents)


def _fitness(source: _Source) -> float:
    """The fitness of a scored source (the sort key of those that have one)."""
    assert source.fitness is not None
    return source.fitness


def _tournament(rng: np.random.Generator, pool: list[_Source], size: int = 3) -> _Source:
    with_fit = [s for s in pool if s.fitness is not None]
    if not with_fit:
        return pool[int(rng.integers(len(pool)))]
    idx = rng.choice(len(with_fit), size=min(size, len(with_fit)), replace=False)
    return max((with_fit[int(i)] for i in idx), key=_fitness)


def _render_checked(prog: Program) -> str | None:
    try:
        code = prog.render()
        compile(code, "<offline>", "exec")
    except (SyntaxError, ValueError, TypeError):
        return None
    return code


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


__all__ = [
    "NO_SEEDS_ERROR",
    "OfflineBackend",
    "Program",
    "normalise",
    "parse_program",
    "prune",
    "transplant",
]
