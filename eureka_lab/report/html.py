"""``eureka-lab report RUN_DIR``: one self-contained HTML file of a run that opens from disk
with no server: the task, each iteration's candidates with their code, numbers and plots,
the best reward, the final comparison, and token usage and cost. Every string a candidate
controls is bounded and escaped (:mod:`eureka_lab.report.notebook`); plots are embedded PNGs.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from eureka_lab.core.files import atomic_write
from eureka_lab.report import notebook as h
from eureka_lab.report import plots
from eureka_lab.report.results import Candidate, Run, load_run
from eureka_lab.report.show import summary_lines
from eureka_lab.runs.behaviour_text import ends_text, event_text

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.best { background: #eaf7ea; }
.failed { color: #a00; }
details { margin: .4em 0; }
summary { cursor: pointer; }
.numbers td:nth-child(n+3) { font-variant-numeric: tabular-nums; }
pre, .highlight { font-size: 90%; overflow-x: auto; }
img { max-width: 100%; }
"""


def _video(c: Candidate, page: Path, embed: bool) -> str:
    """The candidate's rollout video, as the run store checked it: linked relative to the
    page, or embedded."""
    if embed:
        data = c.store.video(c.id)
        src = None if data is None else "data:video/mp4;base64," + base64.b64encode(data).decode()
    else:
        path = c.video_path
        src = None if path is None else Path(os.path.relpath(path, page.parent)).as_posix()
    if src is None:
        return ""
    return (
        f'<video controls loop muted playsinline width="480" src="{h.esc(src, 10**9)}"'
        f' title="rollout of {h.esc(c.id)}"></video>'
    )


def _candidate_block(c: Candidate, best: str | None, page: Path, embed: bool) -> str:
    label = f"{h.esc(c.id)} ({h.esc(c.status)}, task score {h.esc(c.score_text)})"
    parts = [f"<details{' open' if c.id == best else ''}><summary>{label}</summary>"]
    facts = [
        ["components", h.esc(", ".join(c.components) or "-")],
        ["success", "-" if c.success is None else f"{100 * c.success:.0f}%"],
        ["repairs", h.esc(c.parent or "-")],
        ["built on", h.esc(c.based_on or "-")],
    ]
    if c.error:
        facts.append(["error", f'<span class="failed">{h.esc(c.error, 1000)}</span>'])
    parts.append(h.table(None, facts))
    if c.code:
        parts.append(h.code(c.code))
    parts.append(_video(c, page, embed))
    if c.checkpoints:
        parts.append(h.figure(plots.components(c), f"components of {c.id}"))
    parts.append("</details>")
    return "".join(parts)


def _behaviour(c: Candidate) -> str:
    """What the candidate's policy did at its best checkpoint (the evaluator's summary)."""
    step = c.result.best_step if c.result else None
    at = next((cp for cp in c.checkpoints if cp.step == step), None)
    if at is None or at.behaviour is None:
        return ""
    b = at.behaviour
    events = "".join(f"<li>{h.esc(event_text(e, b.episodes))}</li>" for e in b.events)
    rows = [
        [h.esc(s.name)] + [h.num(getattr(s, k)) for k in ("start", "end", "min", "max", "mean")]
        for s in b.signals
    ]
    actions = (
        ""
        if b.action_magnitude is None
        else f"<p>Actions: mean magnitude {h.num(b.action_magnitude)}, "
        f"{100 * (b.action_at_limits or 0):.0f}% of entries at their limits.</p>"
    )
    return (
        f"<h3>What its policy did (step {at.step}, {b.episodes} evaluation episodes, mean "
        f"length {h.num(b.length)}; {h.esc(ends_text(b))})</h3>"
        + (f"<ul>{events}</ul>" if events else "")
        + h.table(["quantity", "start", "end", "min", "max", "mean"], rows, "numbers")
        + actions
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(run: Run, page: Path, embed_videos: bool = False) -> str:
    """The whole report as one HTML string, to be written at ``page``. Videos, where a run
    has them, are linked relative to the page, or embedded with ``embed_videos``."""
    task, summary = run.task, run.summary
    best = run.best
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>eureka-lab: {h.esc(task.name)} {h.esc(run.path.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{h.esc(task.name)}: {h.esc(run.path.name)}</h1>",
        f"<p><b>Environment</b> <code>{h.esc(task.env_id)}</code>. "
        f"<b>Task</b>: {h.esc(task.description)}</p>",
        f"<p>{'Finished' if run.finished else 'Unfinished'}; backend "
        f"{h.esc(run.llm.get('backend'))}; {_count(len(run.iterations), 'iteration')} of "
        f"{_count(run.config.samples, 'sample')}; "
        f"{task.timesteps if summary is None else summary.timesteps:,}"
        " training steps per candidate.</p>",
    ]
    out.append("<h2>Search</h2>")
    if run.candidates:
        out.append(
            h.figure(
                plots.fitness(task.name, run.candidates),
                "task score of every candidate by iteration",
            )
        )
    for it in sorted({c.iteration for c in run.candidates}):
        cands = [c for c in run.candidates if c.iteration == it]
        record = next((r for r in run.iterations if r.iteration == it), None)
        title = f"Iteration {it}" + ("" if record else " (unfinished)")
        out.append(f"<h3>{h.esc(title)}</h3>")
        rows = []
        for c in cands:
            mark = " class='best'" if record and c.id == record.best else ""
            rows.append(
                [
                    f"<span{mark}>{h.esc(c.id)}</span>",
                    h.esc(c.status if c.status != "failed" else f"failed ({c.stage})"),
                    h.esc(c.score_text),
                    "-" if c.success is None else f"{100 * c.success:.0f}%",
                    h.esc(", ".join(c.components) or "-", 300),
                    f'<span class="failed">{h.esc(c.error or "", 300)}</span>',
                ]
            )
        cols = ["candidate", "status", "task score", "success", "components", "why it failed"]
        out.append(h.table(cols, rows, "numbers"))
        out.extend(
            _candidate_block(c, best.id if best else None, page, embed_videos) for c in cands
        )
    out.append("<h2>Best reward</h2>")
    if best is not None:
        out.append(f"<p>{h.esc(best.id)}: task score {h.esc(best.score_text)}</p>")
        out.append(h.code(best.code or ""))
        out.append(_behaviour(best))
    else:
        out.append("<p>No candidate trained yet.</p>")
    out.append("<h2>Final comparison</h2>")
    if summary is None:
        out.append("<p>The run has not finished: no final comparison yet.</p>")
    else:
        rows = [
            [
                h.esc(name),
                h.num(row.fitness) + ("" if row.std is None else f" ± {h.num(row.std)}"),
                "-" if row.success_rate is None else f"{100 * row.success_rate:.0f}%",
                h.esc(", ".join(h.num(x) for x in row.per_seed)),
            ]
            for name, row in summary.final.items()
        ]
        out.append(h.table(["reward", "task score (mean ± std)", "success", "per seed"], rows))
        out.append(f"<p>Seeds {h.esc(', '.join(map(str, summary.seeds)))}.</p>")
        out.append(
            "<ul>" + "".join(f"<li>{h.esc(line)}</li>" for line in summary_lines(summary)) + "</ul>"
        )
        out.append(h.figure(plots.final(summary), "final comparison per seed"))
    u = run.usage
    out.append("<h2>Model usage</h2>")
    out.append(
        f"<p>{u.prompt_tokens:,} prompt and {u.completion_tokens:,} completion tokens; cost "
        f"${u.cost_usd:.4f}.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    path: str | Path, out: str | Path | None = None, embed_videos: bool = False
) -> Path:
    """Write the report of the run at ``path`` to ``out`` (default: ``report.html`` in the
    run directory); return where it went. ``embed_videos`` puts videos inside the file (it
    then opens anywhere), else they are linked (the file opens beside the run)."""
    run = load_run(path)
    target = (Path(out) if out is not None else run.path / "report.html").expanduser().resolve()
    atomic_write(target, render(run, target, embed_videos))
    return target
