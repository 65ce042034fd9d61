"""What a person sees: progress while a run goes (rich on a terminal, plain lines
otherwise) and the ``show`` table of a finished or unfinished run."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from eureka_lab.core.statistics import Estimate
from eureka_lab.core.text import safe_text
from eureka_lab.runs import behaviour_text
from eureka_lab.runs.records import Race, RunSummary, Test
from eureka_lab.runs.scores import Scores
from eureka_lab.runs.store import RunStore


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def describe_event(e: dict[str, Any]) -> str | None:
    """One line for an event, or None for events not worth a line."""
    kind = e["event"]
    if kind == "run_started":
        return f"run {e['run']} (task {e['task']})"
    if kind == "sandbox":
        weak = [line for line in e["layers"] if "NOT" in line]
        if not weak:
            return None
        lines = [f"WARNING sandbox: {line}" for line in weak]
        lines.append(
            "WARNING: candidate code runs in a weaker sandbox (--allow-weak-sandbox); see "
            "README, 'Threat model'"
        )
        return "\n".join(lines)
    if kind == "iteration_started":
        return f"iteration {e['iteration']}: asking the model"
    if kind == "model_answered":
        u = e["usage"]
        cost = f", ${u['cost_usd']:.4f}" if u.get("cost_usd") else ""
        if e.get("run_cost_usd"):
            cost += f" (run so far ${e['run_cost_usd']:.4f})"
        errors = f" ({'; '.join(e['errors'])})" if e.get("errors") else ""
        return (
            f"  {e['key']}: {e['ok']} answers, {e['failed']} failed{errors}; "
            f"{u['prompt_tokens']}+{u['completion_tokens']} tokens{cost}"
        )
    if kind == "candidate" and e["status"] in ("failed", "duplicate"):
        return f"  {e['id']}: {e['status']} at {e['stage'] or 'parse'}: {e['reason']}"
    if kind == "ranking_url":
        return f"rank the candidates in your browser: {e['url']}"
    if kind == "preference":
        return f"  ranked by the {e['annotator']}: " + " > ".join(
            "=".join(group) for group in e["order"]
        )
    if kind == "budget_reached":
        return f"stopping the search at iteration {e['iteration']}: {e['message']}"
    if kind == "repair_requested":
        return f"  {e['id']}: asking the model to repair it"
    if kind == "candidate_trained":
        if e["status"] == "trained":
            return (
                f"  {e['id']}: fitness {_num(e['fitness'])}, success {_pct(e['success_rate'])}"
                f" ({_num(e['seconds'], '.0f')} s, {_num(e['steps_per_second'], '.0f')} steps/s)"
            )
        return f"  {e['id']}: training failed: {e['reason']}"
    if kind == "training_grouped":
        return f"  training {', '.join(e['ids'])} together in one process"
    if kind == "candidate_stopped":
        return (
            f"  {e['id']}: stopped after {e['steps']:,} steps (halving: in the worse half, "
            f"fitness {_num(e['fitness'])})"
        )
    if kind == "iteration_finished":
        best = (
            f"its best {e['best']} scored {_num(e['best_fitness'])}"
            if e["best"]
            else "none trained"
        )
        line = f"iteration {e['iteration']} done: {e['trained']} trained, {best}"
        if e.get("run_best"):
            score = f": {e['run_best_score']}" if e.get("run_best_score") else ""
            line += f"; the run's best so far {e['run_best']}{score}"
        return line
    if kind == "race_started":
        return (
            f"  racing {', '.join(e['entrants'])} on up to {len(e['seeds'])} seeds "
            "(one more seed each round, until one is ahead beyond noise)"
        )
    if kind == "race_round":
        return f"  race after {e['seeds']} seeds: still in {', '.join(e['left'])}"
    if kind == "race_finished":
        how = "beyond noise" if e["decided"] else "by the higher mean, within noise"
        kept = " (the run's best keeps its place)" if e.get("incumbent_kept") else ""
        return f"  race won by {e['winner']} after {e['seeds']} seeds, {how}{kept}"
    if kind == "final_started":
        return (
            f"final comparison: training best, human and sparse rewards on seeds "
            f"{', '.join(map(str, e['seeds']))} ({e['jobs']} jobs)"
        )
    if kind == "run_finished":
        score = e["normalized_score"]
        normalised = _num(score) if score is not None else "undefined (human does not beat sparse)"
        return f"done: best {e['best']}, human-normalised score {normalised}"
    return None


PROGRESS_EVERY = 30.0
"""Seconds between two progress lines in plain output."""


def progress_line(event: dict[str, Any]) -> str:
    """``training: iter_00/cand_00 4/10 checkpoints, ...; 3 waiting``."""
    parts = [f"{key} {done}/{total} checkpoints" for key, (done, total) in event["running"].items()]
    waiting = f"; {event['waiting']} waiting" if event.get("waiting") else ""
    return f"  training: {', '.join(parts) or 'starting'}{waiting}"


class PlainReporter:
    """Plain lines, for logs and pipes: the events, and the trainings' progress every
    :data:`PROGRESS_EVERY` seconds."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.last_progress = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "progress":
            now = time.monotonic()
            if now - self.last_progress >= PROGRESS_EVERY:
                self.last_progress = now
                self.console.print(progress_line(event), markup=False)
            return
        line = describe_event(event)
        if line is not None:
            self.console.print(line, markup=False)


class RichReporter(PlainReporter):
    """Event lines plus a live bar per candidate in training (checkpoints done)."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("checkpoints"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.bars: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "progress":
            if not self.progress.live.is_started:
                self.progress.start()
            for key, (done, total) in event["running"].items():
                if key not in self.bars:
                    self.bars[key] = self.progress.add_task(key, total=total)
                self.progress.update(self.bars[key], completed=done, total=total)
            return
        if event["event"] == "candidate_trained" and event["id"] in self.bars:
            self.progress.remove_task(self.bars.pop(event["id"]))
        if (
            event["event"] in ("iteration_finished", "run_finished")
            and self.progress.live.is_started
        ):
            self.progress.stop()
        line = describe_event(event)
        if line is not None:
            self.progress.console.print(line, markup=False)


def make_reporter(console: Console | None = None) -> PlainReporter:
    console = console or Console(highlight=False)
    return RichReporter(console) if console.is_terminal else PlainReporter(console)


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
        for col in ("candidate", "status", "score", "success", "components", "why"):
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
    if best is not None:
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


def test_text(test: Test) -> str:
    """``difference +2.3 (95% interval -2.9 to 7.6; Welch's t-test p = 0.28)``."""
    if test.p is None:
        return f"difference {test.difference:+.3g} (too few seeds for {test.test})"
    low, high = test.interval or [float("nan"), float("nan")]
    return (
        f"difference {test.difference:+.3g} (95% interval {low:.3g} to {high:.3g}; "
        f"{test.test} p = {test.p:.2g})"
    )


def _show_behaviour(store: RunStore, cid: str, console: Console) -> None:
    """What the best candidate's policy did at its best checkpoint (the evaluator's summary)."""
    result = store.result(cid)
    at = next((c for c in store.checkpoints(cid) if result and c.step == result.best_step), None)
    if at is None or at.behaviour is None:
        return
    lines = behaviour_text.text(at.behaviour).splitlines()
    lines[0] = f"what the best policy did (step {at.step}): " + lines[0].removeprefix("Behaviour ")
    console.print("\n".join(lines), markup=False, highlight=False)
