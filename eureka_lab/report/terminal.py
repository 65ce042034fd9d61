"""What a person sees while a run goes: a line per event worth one, and progress (a live
bar per training on a terminal, a plain line every 30 s otherwise). ``show`` is
:mod:`eureka_lab.report.show`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.text import Text

from eureka_lab.core.text import safe_text
from eureka_lab.report.show import _num, _pct


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
        if e.get("question"):
            return (
                f"{e['question']} (task {e.get('task') or '-'}; blind: A and B are the run's "
                f"best reward and the human reward, in a random order)\n"
                f"  judge them in your browser: {e['url']}"
            )
        return f"rank the candidates in your browser: {e['url']}"
    if kind == "ranking_received":
        return received_text(e)
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


def received_text(e: dict[str, Any]) -> str:
    """``ranking for iteration 0 received: best iter_00/cand_01, worst iter_00/cand_00``;
    ``final verdict received: ...`` for the final verdict, with the label each was shown
    under."""
    order = [[safe_text(c, 80) for c in group] for group in e["order"]]
    tied = len(order) == 1 and len(order[0]) > 1
    if e.get("final"):
        if tied:
            return "final verdict received: can't tell them apart"
        shown = {v: k for k, v in (e.get("labels") or {}).items()}
        top = order[0][0]
        what = "the run's best reward" if top.startswith("final/best") else "the human reward"
        label = f" (shown as {shown[top]})" if top in shown else ""
        return f"final verdict received: {what} is better{label}"
    head = f"ranking for iteration {e['iteration']} received: "
    if tied:
        return head + "can't tell them apart"
    worst = " = ".join(order[-1])
    return head + f"best {' = '.join(order[0])}" + (f", worst {worst}" if len(order) > 1 else "")


PROGRESS_EVERY = 30.0
"""Seconds between two progress lines in plain output."""


def progress_line(event: dict[str, Any]) -> str:
    """``training: iter_00/cand_00 4/10 checkpoints, ...; 3 waiting for a worker``."""
    parts = [f"{key} {run[0]}/{run[1]} checkpoints" for key, run in event["running"].items()]
    waiting = f"; {event['waiting']} waiting for a worker" if event.get("waiting") else ""
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


class _Clock(ProgressColumn):
    """How long a training has run: from its own start (not from when its bar appeared,
    at its first checkpoint)."""

    def render(self, task: Task) -> Text:
        began = task.fields.get("began")
        if began is None:
            return Text("")
        seconds = max(0, int(time.monotonic() - began))
        return Text(f"{seconds // 60}:{seconds % 60:02d}", style="progress.elapsed")


class _Board(Progress):
    """The bars, then a line for the trainings waiting for a worker (no bar, no clock)."""

    note = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.note:
            yield Text(self.note, style="dim")


class RichReporter(PlainReporter):
    """Event lines plus a live bar per training running now that has reported a checkpoint
    (its checkpoints done of those it will report, and how long it has run), and a line
    for the trainings done (scored once the others are) and those waiting for a worker."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.progress = _Board(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("checkpoints"),
            _Clock(),
            console=self.console,
            transient=True,
        )
        self.bars: dict[str, Any] = {}
        self.finished: set[str] = set()
        """Trainings that reported their last checkpoint: no bar, counted on the line."""

    def __call__(self, event: dict[str, Any]) -> None:
        if event["event"] == "progress":
            self._progress(event)
            return
        if event["event"] == "candidate_trained":
            self.finished.discard(event["id"])
            if event["id"] in self.bars:
                self.progress.remove_task(self.bars.pop(event["id"]))
        if event["event"] in ("iteration_finished", "run_finished", "ranking_url"):
            self._clear()
        line = describe_event(event)
        if line is not None:
            self.progress.console.print(line, markup=False)

    def _clear(self) -> None:
        if self.progress.live.is_started:
            self.progress.stop()
        for bar in self.bars.values():
            self.progress.remove_task(bar)
        self.bars, self.finished, self.progress.note = {}, set(), ""

    def _progress(self, event: dict[str, Any]) -> None:
        if not self.progress.live.is_started:
            self.progress.start()
        now = time.monotonic()
        for key, (done, total, *seconds) in event["running"].items():
            if done >= total:  # its last checkpoint: the bar goes, the line counts it
                self.finished.add(key)
                if key in self.bars:
                    self.progress.remove_task(self.bars.pop(key))
                continue
            self.finished.discard(key)  # a training continued (a round of halving)
            if key not in self.bars:
                began = now - (seconds[0] if seconds else 0.0)
                self.bars[key] = self.progress.add_task(
                    key, total=total, completed=done, began=began
                )
            self.progress.update(self.bars[key], completed=done, total=total)
        parts = []
        if self.finished:
            parts.append(f"{len(self.finished)} trained (scored once the others are)")
        waiting = event.get("waiting") or 0
        if waiting:
            parts.append(f"{waiting} waiting for a worker")
        self.progress.note = "; ".join(parts)


def make_reporter(console: Console | None = None) -> PlainReporter:
    console = console or Console(highlight=False)
    return RichReporter(console) if console.is_terminal else PlainReporter(console)
