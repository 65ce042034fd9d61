"""What a person sees: progress while a run goes (rich on a terminal, plain lines
otherwise) and the ``show`` table of a finished or unfinished run."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from eureka_lab.core.text import safe_text
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
            f"best {e['best']} fitness {_num(e['best_fitness'])}" if e["best"] else "none trained"
        )
        return f"iteration {e['iteration']} done: {e['trained']} trained, {best}"
    if kind == "final_started":
        return f"final comparison: training best, human and sparse rewards ({e['jobs']} jobs)"
    if kind == "run_finished":
        return f"done: best {e['best']}, human-normalised score {_num(e['normalized_score'])}"
    return None


class PlainReporter:
    """Plain lines, for logs and pipes."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def __call__(self, event: dict[str, Any]) -> None:
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
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.bars: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "progress":
            if not self.progress.live.is_started:
                self.progress.start()
            for key, done in event["running"].items():
                if key not in self.bars:
                    self.bars[key] = self.progress.add_task(key, total=event["checkpoints"])
                self.progress.update(self.bars[key], completed=done)
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
    for it in store.iterations():
        info = store.iteration(it)
        table = Table(
            title=f"iteration {it}" + ("" if info else " (unfinished)"), title_justify="left"
        )
        for col in ("candidate", "status", "fitness", "success", "components", "why"):
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
                mark += " (best of run)"
            stage = cand.stage or (res.stage if res else None)
            table.add_row(
                _cell(cand.id.split("/")[-1] + mark),
                _cell(status if status != "failed" else f"failed ({stage})"),
                _num(res.fitness if res else None),
                _pct(res.success_rate if res else None),
                _cell(", ".join(cand.components or (res.components if res else []))),
                _cell(why),
            )
        console.print(table)
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
    for col in ("reward", "fitness (mean ± std)", "success", "per seed"):
        table.add_column(col)
    for name, row in summary.final.items():
        per_seed = ", ".join(_num(x) for x in row.per_seed)
        spread = "" if row.std is None else f" ± {_num(row.std)}"
        table.add_row(name, _num(row.fitness) + spread, _pct(row.success_rate), per_seed)
    console.print(table)
    if summary.preference_queries:
        console.print(f"preference queries: {summary.preference_queries}", markup=False)
    if summary.verdict is not None:
        console.print(
            f"the person's verdict on the final videos: {summary.verdict} preferred"
            if summary.verdict != "can't tell"
            else "the person's verdict on the final videos: can't tell",
            markup=False,
        )
    if summary.best_vs_human is not None:
        console.print(
            f"best vs human: {summary.best_vs_human} (difference against the sum of their "
            "standard deviations over the seeds)",
            markup=False,
        )
    console.print(
        "human-normalised score (best - sparse) / |human - sparse|: "
        f"{_num(summary.normalized_score)}",
        markup=False,
    )


_EVENT_TEXT = {
    "fall": "fell or tipped over in {episodes} episodes (step {step} on average)",
    "terminated": "ended early in {episodes} episodes (step {step} on average)",
    "flip": "turned over {value} times on average in {episodes} episodes",
    "still": "barely moved ({value}) in {episodes} episodes",
}


def _show_behaviour(store: RunStore, cid: str, console: Console) -> None:
    """What the best candidate's policy did at its best checkpoint (the evaluator's summary)."""
    result = store.result(cid)
    at = next((c for c in store.checkpoints(cid) if result and c.step == result.best_step), None)
    if at is None or at.behaviour is None:
        return
    b = at.behaviour
    lines = [
        f"what the best policy did (step {at.step}, {b.episodes} evaluation episodes, mean "
        f"length {_num(b.length)}):"
    ]
    for e in b.events:
        lines.append(
            "  "
            + _EVENT_TEXT[e.kind].format(
                episodes=e.episodes, step=_num(e.step), value=_num(e.value)
            )
        )
    for sig in b.signals[:4]:
        lines.append(
            f"  {safe_text(sig.name, 64)}: {_num(sig.start)} -> {_num(sig.end)} "
            f"(min {_num(sig.min)}, max {_num(sig.max)})"
        )
    console.print("\n".join(lines), markup=False, highlight=False)
