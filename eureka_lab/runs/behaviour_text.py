"""What a policy did, in words: how its episodes ended in the task's own terms (reached the
goal, fell, ended by the environment, reached the time limit), one line for the ranking
page, and the text and HTML views of a :class:`~eureka_lab.runs.records.Behaviour`.

Read by ``show``, the HTML report, the ranking pages and the notebook views, so that each
says the same thing the same way. It takes the records as they are (it imports none of
them: :mod:`eureka_lab.runs.records` uses it for its own views). Numbers to three
significant digits; every name a run controls is bounded and, in HTML, escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from eureka_lab.core.text import safe_text

EVENTS = {
    "goal": "reached the goal (a success) in {n} of {of} episodes, at step {step} on average",
    "fall": "fell or tipped over in {n} of {of} episodes, at step {step} on average",
    "terminated": "ended by the environment's own end condition in {n} of {of} episodes, "
    "at step {step} on average",
    "flip": "turned over ({value} turns on average) in {n} of {of} episodes",
    "still": "barely moved ({value} along the forward axis) in {n} of {of} episodes",
}
"""One line per kind of event (``Event.kind``)."""


def num(x: float | None) -> str:
    """As the prompts write numbers: a whole number in full, another to three significant
    digits (no exponent from 100 up to a million); ``-`` for none."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    if abs(x) < 1e15 and float(x) == int(x):
        return str(int(x))
    if 100 <= abs(x) < 1e6:
        return f"{x:.0f}"
    return f"{x:.3g}"


def event_text(event: Any, episodes: int) -> str:
    """``reached the goal (a success) in 8 of 10 episodes, at step 124 on average``."""
    return EVENTS[event.kind].format(
        n=event.episodes, of=episodes, step=num(event.step), value=num(event.value)
    )


def ends_text(b: Any) -> str:
    """How the episodes ended: ``8 of 10 reached the goal, 2 reached the time limit``."""
    kinds = {e.kind: e.episodes for e in b.events}
    parts = []
    goal = kinds.get("goal", 0)
    if goal:
        parts.append(f"{goal} reached the goal")
    if kinds.get("fall"):
        parts.append(f"{kinds['fall']} fell")
    other = b.terminated - goal - kinds.get("fall", 0)
    if other > 0:
        parts.append(f"{other} ended by the environment")
    if b.truncated:
        parts.append(f"{b.truncated} reached the time limit")
    if not parts:
        return "none ended"
    count, rest = parts[0].split(" ", 1)
    return ", ".join([f"{count} of {b.episodes} {rest}", *parts[1:]])


def _distance(b: Any) -> str | None:
    """How far the body's root moved forward (MuJoCo), or how the observation that changed
    most went (any other env)."""
    for s in b.signals:
        if s.name.endswith("(position)"):
            name = s.name.removesuffix(" (position)")
            return f"moved {num(s.end - s.start)} along {safe_text(name, 40)}"
    if b.signals:
        s = b.signals[0]
        return f"{safe_text(s.name, 40)} {num(s.start)} → {num(s.end)} (max {num(s.max)})"
    return None


def short_line(b: Any) -> str:
    """One line on what a policy did (the ranking page): episode length, how the
    episodes ended, distance or the observation that changed most."""
    parts = [f"{num(b.length)} steps per episode", ends_text(b)]
    parts += [f"turned over in {e.episodes}" for e in b.events if e.kind == "flip"]
    where = _distance(b)
    if where:
        parts.append(where)
    return "; ".join(parts)


MAX_SHOWN = 6
"""Signals a view lists (the rest are counted)."""


def text(b: Any) -> str:
    """A few readable lines (the text view of a Behaviour)."""
    lines = [
        f"Behaviour over {b.episodes} evaluation episodes: mean length {num(b.length)} "
        f"steps; {ends_text(b)}"
    ]
    lines += [f"  {event_text(e, b.episodes)}" for e in b.events]
    for s in b.signals[:MAX_SHOWN]:
        lines.append(
            f"  {safe_text(s.name, 64)}: {num(s.start)} -> {num(s.end)} "
            f"(min {num(s.min)}, max {num(s.max)}, mean {num(s.mean)})"
        )
    if len(b.signals) > MAX_SHOWN:
        lines.append(f"  ... and {len(b.signals) - MAX_SHOWN} more quantities")
    if b.action_magnitude is not None:
        lines.append(
            f"  actions: mean magnitude {num(b.action_magnitude)}, "
            f"{100 * (b.action_at_limits or 0):.0f}% of entries at their limits"
        )
    return "\n".join(lines)


def to_html(b: Any) -> str:
    """The HTML view of a Behaviour (Jupyter): a sentence, the events, a table of the
    quantities; escaped, and opted out of MathJax."""

    def esc(value: object) -> str:
        return html.escape(safe_text(value, 200), quote=True)

    events = "".join(f"<li>{esc(event_text(e, b.episodes))}</li>" for e in b.events)
    rows = "".join(
        f"<tr><td>{esc(s.name)}</td>"
        + "".join(f"<td>{num(getattr(s, k))}</td>" for k in ("start", "end", "min", "max", "mean"))
        + "</tr>"
        for s in b.signals
    )
    head = "".join(f"<th>{k}</th>" for k in ("quantity", "start", "end", "min", "max", "mean"))
    actions = (
        ""
        if b.action_magnitude is None
        else f"<p>Actions: mean magnitude {num(b.action_magnitude)}, "
        f"{100 * (b.action_at_limits or 0):.0f}% of entries at their limits.</p>"
    )
    return (
        '<div class="tex2jax_ignore">'
        f"<p><b>What the policy did</b> over {b.episodes} evaluation episodes: mean length "
        f"{num(b.length)} steps; {esc(ends_text(b))}.</p>"
        + (f"<ul>{events}</ul>" if events else "")
        + (f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>" if rows else "")
        + actions
        + "</div>"
    )
