"""ICPL's preference feedback: the most and the least preferred candidates' code with their
reward traces, the person's comments, and a compact history of earlier choices."""

from __future__ import annotations

from typing import Any

from eureka_lab.core.text import safe_text
from eureka_lab.feedback.base import Feedback, Material
from eureka_lab.feedback.reflection import reflection
from eureka_lab.prompt.conversation import Message
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.scores import Trained


class Preference(Feedback):
    """ICPL: the most and the least preferred candidates' code with their reward traces,
    the person's comments (Eureka-HF's critique), and a compact history of earlier choices.
    The task score is never shown: a person's preference replaces it."""

    def messages(self, prompts: PromptBook, material: Material) -> list[Message]:
        best, worst = material.ranked[0], material.ranked[-1]
        last = material.rankings[-1] if material.rankings else None
        comments = last.comments if last else {}

        def view(t: Trained, with_code: bool) -> dict[str, Any]:
            stats = reflection([c.model_dump() for c in t.checkpoints])
            return {
                "id": t.id,
                "stats": stats,
                "code": safe_text(material.codes.get(t.id, ""), 6000) if with_code else "",
                "comment": comments.get(t.id),
            }

        by_id = {t.id: t for t in material.ranked}
        history = []
        for r in material.rankings[-MAX_HISTORY:]:
            top, bottom = r.order[0][0], r.order[-1][0]
            if top == bottom:
                continue
            history.append(
                {
                    "iteration": r.iteration,
                    "best": top,
                    "worst": bottom,
                    "best_components": ", ".join(by_id[top].candidate.components)
                    if top in by_id
                    else "-",
                    "worst_components": ", ".join(by_id[bottom].candidate.components)
                    if bottom in by_id
                    else "-",
                }
            )
        return [
            Message("assistant", material.responses[best.id]),
            Message(
                "user",
                prompts.render(
                    "preference",
                    best=view(best, False),
                    worst=view(worst, True) if worst.id != best.id else None,
                    overall=last.overall if last else None,
                    history=history,
                ),
            ),
        ]


MAX_HISTORY = 8
"""Earlier choices listed in a preference prompt."""
