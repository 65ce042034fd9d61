"""HTML pieces shared by the notebook views and the report: everything a candidate controls
goes through :func:`esc` (bounded, escaped); code is highlighted with inline styles, so a
page is self-contained."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

from eureka_lab.core.text import safe_text


def esc(value: object, limit: int = 2000) -> str:
    """Bounded, escaped text for HTML."""
    return html.escape(safe_text(value, limit), quote=True)


def notebook(body: str) -> str:
    """``body`` as a notebook output. Jupyter typesets ``$...$`` in HTML outputs with
    MathJax, which would show a candidate's text as markup: every view opts out."""
    return f'<div class="tex2jax_ignore">{body}</div>'


def num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def code(source: str, limit: int = 20_000) -> str:
    """Python source as highlighted HTML (inline styles), bounded and escaped."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    text = safe_text(source, limit)
    return highlight(text, PythonLexer(), HtmlFormatter(noclasses=True, nowrap=False))


def table(header: Sequence[str] | None, rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table (no header row when ``header`` is None); cells must already be HTML
    (escape candidate text with :func:`esc`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header or ())
    head = f"<thead><tr>{head}</tr></thead>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}">{head}<tbody>{body}</tbody></table>'


def figure(fig: Any, alt: str) -> str:
    """A matplotlib figure as an embedded PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
