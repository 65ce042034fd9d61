"""Strings that candidate code controls, made safe for a terminal, a file, a table, a page or
a prompt: bounded, valid UTF-8, with control characters made visible."""

from __future__ import annotations

import re

from eureka_lab.core.bounds import MAX_NAME

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _visible(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def safe_text(value: object, limit: int = 2000) -> str:
    """``value`` as text cut to ``limit`` characters (saying how much was cut), with lone
    surrogates and control characters other than newline and tab escaped."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception as e:  # a hostile __str__
        text = f"<unprintable {type(value).__name__}: {type(e).__name__}>"
    if len(text) > limit:
        text = f"{text[:limit]}... [{len(text) - limit} more characters cut]"
    return _CONTROL.sub(_visible, text)


def safe_name(value: object, limit: int = MAX_NAME) -> str:
    """A component or key name: one line of at most ``limit`` characters."""
    return safe_text(value, limit).replace("\n", "\\n").replace("\t", "\\t")
