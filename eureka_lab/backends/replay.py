"""A backend that answers with the completions an earlier run recorded (``replay:RUN_DIR``).

It needs no endpoint and costs nothing: useful to re-run training and scoring on the same
reward code, or to debug the loop. A prompt the old run never sent is an error that shows
where the conversation first differs from what was recorded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from eureka_lab.backends import BackendSettings
from eureka_lab.backends.base import Completion, Prompt, Usage
from eureka_lab.core.errors import BackendError, RunError
from eureka_lab.runs.formats import completion_from_dict
from eureka_lab.runs.store import RunStore

_SHOW = 120


def _clip(text: str) -> str:
    return repr(text if len(text) <= _SHOW else text[:_SHOW] + "...")


def first_difference(recorded: list[dict[str, Any]], messages: list[dict[str, str]]) -> str | None:
    """Describe the first message that differs between two conversations, or None."""
    for i in range(max(len(recorded), len(messages))):
        if i >= len(recorded):
            return f"message {i} ({messages[i]['role']}) was not in the recorded request"
        if i >= len(messages):
            return f"recorded message {i} ({recorded[i]['role']}) is missing from this prompt"
        old, new = recorded[i], messages[i]
        if old["role"] != new["role"]:
            return f"message {i} has role {new['role']!r}; the recorded one had {old['role']!r}"
        if old["content"] != new["content"]:
            old_lines = old["content"].splitlines()
            new_lines = new["content"].splitlines()
            for j in range(max(len(old_lines), len(new_lines))):
                a = old_lines[j] if j < len(old_lines) else None
                b = new_lines[j] if j < len(new_lines) else None
                if a != b:
                    return (
                        f"message {i} ({new['role']}) differs at line {j + 1}: recorded "
                        f"{_clip(a) if a is not None else '(no such line)'}, now "
                        f"{_clip(b) if b is not None else '(no such line)'}"
                    )
            return f"message {i} ({new['role']}) differs in whitespace at the end"
    return None


class ReplayBackend:
    """Returns the completions recorded in ``RUN_DIR/llm/`` for the same prompt."""

    name = "replay"

    def __init__(self, settings: BackendSettings | None = None, run_dir: str | Path = "") -> None:
        if not run_dir:
            raise BackendError(
                "The replay backend needs the run to replay: use --backend replay:RUN_DIR."
            )
        try:
            store = RunStore.open(run_dir)
            records = store.requests()
        except RunError as e:
            raise BackendError(f"Cannot replay {run_dir}: {e}") from None
        self.run_dir = store.root
        self.records: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            self.records.setdefault(record.get("key", ""), []).append(record)

    def __repr__(self) -> str:
        return f"ReplayBackend({str(self.run_dir)!r})"

    def complete(self, prompt: Prompt, n: int) -> list[Completion]:
        record = self._find(prompt)
        recorded = [completion_from_dict(c) for c in record.get("completions", [])]
        out = []
        for c in recorded[:n]:
            meta = {**c.meta, "replayed_from": str(self.run_dir)}
            # The tokens were paid for by the recorded run, not this one.
            out.append(replace(c, usage=replace(c.usage, cost_usd=0.0), meta=meta))
        for _ in range(n - len(out)):
            out.append(
                Completion(
                    None,
                    Usage(),
                    error=f"replay: {self.run_dir} recorded only {len(recorded)} completions for "
                    f"{prompt.key!r}; {n} were asked for",
                    model="replay",
                )
            )
        return out

    def _find(self, prompt: Prompt) -> dict[str, Any]:
        candidates = self.records.get(prompt.key, [])
        if not candidates:
            known = sorted(self.records)
            shown = ", ".join(repr(k) for k in known[:8]) + (", ..." if len(known) > 8 else "")
            raise BackendError(
                f"Cannot replay: {self.run_dir} has no recorded request with key "
                f"{prompt.key!r} (it has {shown or 'none'}). Replay only re-runs prompts the "
                "old run sent; use a live backend to go further."
            )
        messages = [m.to_dict() for m in prompt.messages]
        best: tuple[int, str] | None = None
        for record in candidates:
            problems = []
            if record.get("purpose") != prompt.purpose:
                problems.append(f"purpose {prompt.purpose!r} (recorded {record.get('purpose')!r})")
            if record.get("iteration") != prompt.iteration:
                problems.append(
                    f"iteration {prompt.iteration} (recorded {record.get('iteration')})"
                )
            diff = first_difference(record.get("messages", []), messages)
            if diff:
                problems.append(diff)
            if not problems:
                return record
            if best is None or len(problems) < best[0]:
                best = (len(problems), "; ".join(problems))
        assert best is not None
        raise BackendError(
            f"Cannot replay {prompt.key!r}: this prompt differs from the one recorded in "
            f"{self.run_dir}: {best[1]}. Replay needs the same task, prompts and settings "
            "as the recorded run."
        )
