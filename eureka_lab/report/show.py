"""``eureka-lab show``: a run's iterations and candidates, the best reward (its code and
what its policy did), the final comparison with each claim and its test; a folder of runs
as a list of them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from eureka_lab.core.errors import EurekaError
from eureka_lab.core.statistics import ALPHA, Estimate
from eureka_lab.core.text import safe_text
from eureka_lab.runs import behaviour_text
from eureka_lab.runs.records import Race, RunSummary, Test
from eureka_lab.runs.scores import Scores
from eureka_lab.runs.store import RunStore


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _cell(value: object, limit: int = 300) -> Text:
    """A table cell holding text a candidate may control: bounded, escaped, no markup."""
    return Text(safe_text(value, limit))


def show_run(store: RunStore, console: Console | None = None) -> None:
    """Print every iteration's candidates, the best, and the final comparison."""
    console = console or Console(highlight=False)
    config = store.config
    console.print(
        Text.assemble(
            (str(store.root), "bold"),
            f"  task {config['task']['name']}  backend {config.get('llm')}",
        )
    )
    summary = store.summary()
    best = summary.best if summary else None
    scores = Scores.of(store)
    for it in store.iterations():
        info = store.iteration(it)
        table = Table(
            title=f"iteration {it}" + ("" if info else " (unfinished)"), title_justify="left"
        )
        table.add_column("candidate", no_wrap=True)  # its id and marks on one line
        for col in ("status", "score", "success", "components", "why"):
            table.add_column(col, overflow="fold")
        for cand in store.candidates(it):
            res = store.result(cand.id)
            status: str = res.status if res else cand.status
            if res is not None and res.stopped_at is not None:
                status = f"stopped at {res.stopped_at:,} steps"
            why = (
                ""
                if res is not None and res.status == "trained"
                else (cand.reason or (res.reason if res else "") or "")
            )
            mark = ""
            if info and cand.id == info.best:
                mark += " *"
            if cand.id == best:
                mark += " (best)"
            stage = cand.stage or (res.stage if res else None)
            estimate = scores.estimate(cand.id) if res is not None else None
            table.add_row(
                _cell(cand.id.split("/")[-1] + mark),
                _cell(status if status != "failed" else f"failed ({stage})"),
                estimate.text() if estimate else _num(res.fitness if res else None),
                _pct(res.success_rate if res else None),
                _cell(", ".join(cand.components or (res.components if res else []))),
                _cell(why),
            )
        console.print(table)
        if info is not None and info.race is not None:
            console.print(race_text(info.race), markup=False)
    best = best or _best_so_far(store)
    if best is not None:
        _show_code(store, best, summary is not None, console)
        _show_behaviour(store, best, console)
        video = store.video_path(best)
        if video is not None:
            console.print(f"rollout video of the best policy: {video}", markup=False)
    usage = store.usage()
    console.print(
        f"model usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens,"
        f" cost ${usage.cost_usd:.4f}",
        markup=False,
    )
    if summary is None:
        console.print(
            "no summary yet: the run has not finished (eureka-lab resume continues it)",
            markup=False,
        )
        return
    seeds = ", ".join(str(s) for s in summary.seeds)
    table = Table(
        title=f"final comparison (same budget; fresh seeds {seeds}; "
        f"{summary.eval_episodes or '-'} evaluation episodes)",
        title_justify="left",
    )
    for col in ("reward", "score (mean ± std)", "95% interval", "success", "per seed"):
        table.add_column(col)
    for name, row in summary.final.items():
        per_seed = ", ".join(_num(x) for x in row.per_seed)
        spread = "" if row.std is None else f" ± {_num(row.std)}"
        interval = (
            "-" if row.interval is None else f"{_num(row.interval[0])} to {_num(row.interval[1])}"
        )
        table.add_row(name, _num(row.fitness) + spread, interval, _pct(row.success_rate), per_seed)
    console.print(table)
    for line in summary_lines(summary):
        console.print(line, markup=False)


def race_text(race: Race) -> str:
    """How a race on fresh seeds went, in a few lines."""
    lines = [
        f"  race on seeds {', '.join(map(str, race.seeds))}"
        + (f" against the run's best {race.incumbent}" if race.incumbent else "")
        + f": {race.winner} won "
        + ("beyond noise" if race.decided else "by the higher mean (undecided within noise)")
    ]
    for e in race.entrants:
        est = Estimate(tuple(e.scores), episodes=0).text() if e.scores else "-"
        fate = (
            f"out after {e.out_after} seeds (p = {e.p:.2g})"
            if e.out_after
            else ("the winner" if e.id == race.winner else f"p = {_num(e.p, '.2g')} against it")
        )
        lines.append(f"    {e.id}: {est}; {fate}")
    return "\n".join(lines)


def summary_lines(summary: RunSummary) -> list[str]:
    """What the closing comparison says, each claim with its test."""
    lines = []
    if summary.best_search_fitness is not None:
        search = _num(summary.best_search_fitness)
        if summary.best_search_std is not None:
            search += f" ± {_num(summary.best_search_std)}"
        if summary.best_search_seeds:
            search += f" over {summary.best_search_seeds} search seed(s)"
        lines.append(f"the best's score in the search (held-out): {search}")
    if summary.preference_queries:
        lines.append(f"preference queries: {summary.preference_queries}")
    if summary.verdict is not None:
        lines.append(
            f"the person's verdict on the final videos: {summary.verdict} preferred"
            if summary.verdict != "can't tell"
            else "the person's verdict on the final videos: can't tell"
        )
    if summary.best_vs_human_test is not None:
        lines.append(
            f"best vs human: {summary.best_vs_human or 'no verdict (one seed)'}; "
            + test_text(summary.best_vs_human_test)
        )
    if summary.best_vs_sparse_test is not None:
        lines.append(
            f"best vs sparse: {_beyond(summary.best_vs_sparse_test)}; "
            + test_text(summary.best_vs_sparse_test)
        )
    if summary.normalized_score is not None:
        lines.append(
            "human-normalised score (best - sparse) / |human - sparse|: "
            f"{_num(summary.normalized_score)}"
        )
    else:
        why = (
            test_text(summary.human_vs_sparse_test)
            if summary.human_vs_sparse_test is not None
            else "no sparse or human score"
        )
        lines.append(
            "human-normalised score: undefined (the human reward does not beat the sparse "
            f"reward beyond noise: {why})"
        )
    return lines


def _beyond(test: Test) -> str:
    if test.p is None:
        return "no verdict (one seed)"
    if test.p >= ALPHA:
        return "within noise"
    return "better" if test.difference > 0 else "worse"


def test_text(test: Test) -> str:
    """``difference +2.3 (95% interval -2.9 to 7.6; Welch's t-test p = 0.28)``."""
    if test.p is None:
        return f"difference {test.difference:+.3g} (too few seeds for {test.test})"
    low, high = test.interval or [float("nan"), float("nan")]
    return (
        f"difference {test.difference:+.3g} (95% interval {low:.3g} to {high:.3g}; "
        f"{test.test} p = {test.p:.2g})"
    )


CODE_LINES = 60
"""The longest reward ``show`` prints (the rest is counted; the file is named)."""


def _best_so_far(store: RunStore) -> str | None:
    """The run's best after its last finished iteration (a run that has not finished)."""
    for it in reversed(store.iterations()):
        info = store.iteration(it)
        if info is not None and (info.run_best or info.best):
            return info.run_best or info.best
    return None


def _show_code(store: RunStore, cid: str, final: bool, console: Console) -> None:
    """The best reward's code, highlighted, bounded (:data:`CODE_LINES`) and with control
    characters made visible (it is the model's text)."""
    code = store.reward_code(cid)
    if not code:
        return
    lines = safe_text(code, 20_000).rstrip().splitlines()
    cut = len(lines) - CODE_LINES
    title = f"the {'' if final else 'current '}best reward, {cid}"
    console.print(
        Panel(
            Syntax("\n".join(lines[:CODE_LINES]), "python", theme="ansi_dark", word_wrap=True),
            title=Text(safe_text(title, 200)),
            title_align="left",
        ),
        soft_wrap=False,  # wrap long lines inside the panel, never cut them
    )
    if cut > 0:
        where = store.root / cid / "reward.py"
        console.print(f"  ... {cut} more lines: the whole reward is {where}", markup=False)


def show_runs(paths: list[Path], console: Console | None = None) -> None:
    """A folder of runs: each run's id and task, whether it finished and how many of its
    iterations did, its best and the best's score."""
    console = console or Console(highlight=False)
    table = Table(title=f"{len(paths)} runs in {paths[0].parent}", title_justify="left")
    table.add_column("run (task)", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("best (score)", ratio=1, overflow="fold")
    for path in paths:
        try:
            store = RunStore.open(path, lenient=True)
        except EurekaError as e:
            table.add_row(_cell(path.name), "unreadable", _cell(e, 200))
            continue
        config = store.config
        planned = config.get("loop", {}).get("iterations", "?")
        done = sum(1 for it in store.iterations() if store.iteration(it) is not None)
        summary = store.summary()
        best = summary.best if summary else _best_so_far(store)
        if summary is not None:
            score = _num(summary.best_search_fitness)
            if summary.best_search_std is not None:
                score += f" ± {_num(summary.best_search_std)}"
        else:
            estimate = Scores.of(store).estimate(best) if best else None
            score = estimate.text() if estimate else "-"
        task = safe_text(config.get("task", {}).get("name", "?"), 64)
        table.add_row(
            Text.assemble(safe_text(path.name, 80), "\n", (task, "dim")),
            Text.assemble(
                ("finished", "green") if summary else ("unfinished", "yellow"),
                f"\n{done} of {planned} iterations",
            ),
            Text.assemble(safe_text(best or "-", 64), "\n", (score, "dim")),
            end_section=True,
        )
    console.print(table)
    console.print("one run in full: eureka-lab show RUN_DIR", markup=False)


def _show_behaviour(store: RunStore, cid: str, console: Console) -> None:
    """What the best candidate's policy did at its best checkpoint (the evaluator's summary)."""
    result = store.result(cid)
    at = next((c for c in store.checkpoints(cid) if result and c.step == result.best_step), None)
    if at is None or at.behaviour is None:
        return
    lines = behaviour_text.text(at.behaviour).splitlines()
    lines[0] = f"what the best policy did at step {at.step}, " + lines[0].removeprefix("Behaviour ")
    console.print("\n".join(lines), markup=False, highlight=False)
