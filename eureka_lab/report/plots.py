"""Pictures of a run (matplotlib, imported on first use): every function returns the Figure
and draws on ``ax`` when one is given.

- :func:`fitness`: every candidate's task score per iteration, and the best so far;
- :func:`components`: each reward component of one candidate over training, with the score;
- :func:`final`: the closing comparison of best, human and sparse rewards, per seed.

Every string drawn (the task's name, candidate ids, component names) comes from a run
folder, so it is literal text: no mathtext, no LaTeX.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from eureka_lab.core.errors import ConfigError
from eureka_lab.runs.records import Checkpoint, RunSummary


class Scored(Protocol):
    """What :func:`fitness` reads of a candidate."""

    @property
    def iteration(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def fitness(self) -> float | None: ...


class Trace(Protocol):
    """What :func:`components` reads of a candidate."""

    @property
    def id(self) -> str: ...

    @property
    def checkpoints(self) -> Sequence[Checkpoint]: ...


def _pyplot() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline",):
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            'Plots need matplotlib: pip install "eureka-lab[notebook]" (or matplotlib).'
        ) from None
    return plt


def _axes(ax: Any, size: tuple[float, float] = (6.4, 3.6)) -> tuple[Any, Any]:
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def _laid_out(fig: Any, *axes: Any) -> Any:
    """``fig`` laid out, with every text on ``axes`` literal. Matplotlib parses a string with
    two ``$`` as mathtext (a component named ``$\\sqrt{$`` made the layout raise, and the
    whole report was lost) and, where ``text.usetex`` is set, hands it to LaTeX. Titles,
    labels, legends and tick labels get the same setting, also on an axis the caller made;
    the caller's other axes keep theirs."""
    from matplotlib.text import Text

    for ax in axes:
        for text in ax.findobj(Text):
            text.set_parse_math(False)
            text.set_usetex(False)
    fig.tight_layout()
    return fig


def fitness(task: str, cands: Sequence[Scored], ax: Any = None) -> Any:
    """Every trained candidate's score by iteration (dots), failed ones marked at the
    bottom, and the run's best so far (a line)."""
    fig, ax = _axes(ax)
    scored = [(c.iteration, c.fitness) for c in cands if c.fitness is not None]
    failed = [c.iteration for c in cands if c.status == "failed"]
    if scored:
        ax.scatter(*zip(*scored, strict=True), s=25, alpha=0.7, label="candidate")
        best: dict[int, float] = {}
        for it, f in scored:
            best[it] = max(best.get(it, f), f)
        its = sorted(best)
        running, so_far = [], float("-inf")
        for it in its:
            so_far = max(so_far, best[it])
            running.append(so_far)
        ax.plot(its, running, color="black", lw=2, label="best so far")
        if failed:
            low = min(f for _, f in scored)
            ax.scatter(failed, [low] * len(failed), marker="x", color="red", label="failed")
    ax.set_xlabel("iteration")
    ax.set_ylabel("task score")
    ax.set_title(f"{task}: candidates by iteration")
    ax.set_xticks(sorted({c.iteration for c in cands}) or [0])
    ax.legend(loc="best", fontsize="small")
    return _laid_out(fig, ax)


def components(cand: Trace, ax: Any = None) -> Any:
    """Each reward component's mean at the checkpoints, and the task score on a second axis."""
    fig, ax = _axes(ax)
    cps = cand.checkpoints
    steps = [c.step for c in cps]
    for name in sorted({n for c in cps for n in c.components}):
        ax.plot(
            [c.step for c in cps if name in c.components],
            [c.components[name].mean for c in cps if name in c.components],
            marker=".",
            label=name,
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("component mean")
    ax.set_title(f"{cand.id}: reward components")
    scores = [c.fitness for c in cps]
    drawn = [ax]
    if steps and all(s is not None for s in scores):
        twin = ax.twinx()
        twin.plot(steps, scores, color="black", ls="--", lw=2, label="task score")
        twin.set_ylabel("task score")
        twin.legend(loc="lower right", fontsize="small")
        drawn.append(twin)
    ax.legend(loc="upper left", fontsize="small")
    return _laid_out(fig, *drawn)


def final(summary: RunSummary | None, ax: Any = None) -> Any:
    """The closing comparison: each reward's score per seed, and its mean."""
    fig, ax = _axes(ax)
    if summary is None:
        ax.text(0.5, 0.5, "the run has not finished", ha="center", va="center")
        return fig
    names = list(summary.final)
    for i, name in enumerate(names):
        row = summary.final[name]
        per_seed = [x for x in row.per_seed if x is not None]
        ax.scatter([i] * len(per_seed), per_seed, alpha=0.7)
        if row.fitness is not None:
            ax.hlines(row.fitness, i - 0.25, i + 0.25, color="black", lw=2)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("task score")
    ax.set_title(f"final comparison over seeds {', '.join(map(str, summary.seeds))}")
    return _laid_out(fig, ax)
