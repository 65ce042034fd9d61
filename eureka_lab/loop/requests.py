"""Asking the model: every request is recorded with its answers and usage, and a request
already answered (a resumed run) is answered from the record, never asked again."""

from __future__ import annotations

from dataclasses import asdict, replace

from eureka_lab.backends.base import Backend
from eureka_lab.core.errors import RunError
from eureka_lab.core.text import safe_text
from eureka_lab.loop.journal import Journal
from eureka_lab.prompt.conversation import Completion, Prompt, Usage
from eureka_lab.reward.answer import cut_answer


class Requests:
    """The model backend behind the run's record of requests."""

    def __init__(self, journal: Journal, backend: Backend) -> None:
        self.journal = journal
        self.backend = backend

    def ask(self, prompt: Prompt, n: int) -> list[Completion]:
        """``n`` answers to ``prompt``: recorded ones, else the model's (then recorded),
        each cut to the longest answer the parser reads, so that no record, prompt or file
        holds more. A sampling request with no usable answer stops the run, saying how to
        go on."""
        store = self.journal.store
        recorded = store.load_request(prompt.key)
        if recorded is not None:
            return cut_answers(recorded)
        completions = cut_answers(self.backend.complete(prompt, n))
        ok = sum(c.ok for c in completions)
        if ok == 0 and prompt.purpose == "sample":
            # Not recorded as the answer, so that resuming asks again.
            store.save_request(prompt, n, completions, self.backend.name, failed=True)
            errors = "; ".join(
                sorted({safe_text(c.error or "empty answer", 300) for c in completions})
            )
            raise RunError(
                f"The model returned no usable answer to {prompt.key} ({errors}). Fix the "
                f"endpoint or settings, then continue with: eureka-lab resume {store.root}"
            )
        store.save_request(prompt, n, completions, self.backend.name)
        usage = sum((c.usage for c in completions), start=Usage())
        self.journal.emit(
            "model_answered",
            key=prompt.key,
            ok=ok,
            failed=n - ok,
            usage=asdict(usage),
            run_cost_usd=store.usage().cost_usd,
            errors=[safe_text(c.error, 300) for c in completions if c.error][:3],
        )
        return completions


def cut_answers(completions: list[Completion]) -> list[Completion]:
    """Each answer cut to the longest one the parser reads (:func:`cut_answer`)."""
    return [replace(c, text=cut_answer(c.text)) if c.text else c for c in completions]
