"""The selection seam: order an iteration's trained candidates, best first.

A selector returns a ranking: a list of groups, best group first; candidates in one group
are tied. The loop takes the first candidate of the first group as the iteration's best,
and ranks the run's best against each iteration's best the same way. Selectors are chosen
by name from :data:`SELECTORS` (``fitness``, ``oracle``, ``human``, ``text``, and any a
package announces in the entry-point group ``eureka_lab.selectors``).

:class:`Selector` declares the whole contract: :meth:`~Selector.rank`, and the optional
parts with their defaults (who answers the preference queries, whether the selector
records its rankings itself, whether an iteration's favourite always becomes the parent,
which feedback and whether videos it needs, :meth:`~Selector.attach`, and
:meth:`~Selector.judge` for the final verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from eureka_lab.core.plugins import SELECTORS
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore

__all__ = ["SELECTORS", "VERDICT_QUESTION", "Announce", "Ranking", "Selector", "make_selector"]

Ranking = list[list[str]]


VERDICT_QUESTION = "Final verdict: which of these two policies better does the task?"
"""What the final verdict asks a person (the page and the terminal say it, with the task)."""


def verdict_roles(best: Trained, human: Trained) -> dict[str, str]:
    """What each policy of the final verdict is, in words (told once it is answered)."""
    return {
        best.id: f"the run's best reward ({best.id})",
        human.id: f"the task's human reward ({human.id})",
    }


class Announce(Protocol):
    """How a selector shows a person where to rank: the page's URL (empty where the person
    answers at the terminal), and the question where it is not the usual one (the final
    verdict's)."""

    def __call__(self, url: str, question: str | None = None) -> None: ...


class Selector:
    """Orders candidates. Subclasses implement :meth:`rank` and override the optional
    parts they need."""

    annotator: ClassVar[str | None] = None
    """Who answers preference queries (a person, an oracle), or None (a score, no query).
    The loop records each ranking a selector with an annotator gives, and counts them."""
    records_itself: ClassVar[bool] = False
    """Whether :meth:`rank` records its rankings in the run store itself (with a person's
    comments), so that the loop does not."""
    prefers_newest: ClassVar[bool] = False
    """Whether each iteration's favourite becomes the run's best without a second question
    against the best so far (ICPL's protocol)."""
    feedback: ClassVar[str] = "reflection"
    """The feedback mode the next prompt needs from this selector by default."""
    needs_videos: ClassVar[bool] = False
    """Whether candidates must have rollout videos to be ranked."""
    needs_fitness: ClassVar[bool] = True
    """Whether ranking reads the task's fitness (a task without one needs a person)."""
    races: ClassVar[bool] = False
    """Whether the rewards it ranks by score should race on fresh seeds before the run's
    best is chosen (:mod:`eureka_lab.loop.racing`): true of selection by the task's score,
    not of a person's or an oracle's preference."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def attach(self, store: RunStore, task: str, announce: Announce | None = None) -> None:
        """Called once by the loop: the run the selector serves, the task in words, and
        how to show a person where to rank. Most selectors need none of it."""

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        """``trained`` ordered best first, ties grouped; earlier entries win ties."""
        raise NotImplementedError

    def judge(self, best: Trained, human: Trained) -> Ranking:
        """The final verdict: the policies of the run's best reward and of the human reward
        (trained on the closing comparison's first seed), ordered as :meth:`rank` orders
        (one group of both: can't tell). By default, :meth:`rank` of the two; a person's
        selector shows them blind, under neutral labels in a random order."""
        return self.rank([best, human])


def make_selector(name: str, seed: int = 0, **options: Any) -> Selector:
    """The selector ``name`` with its ``options`` (the oracle's ``noise`` and ``mistakes``,
    the ranking page's ``host`` and ``port``)."""
    selector: Selector = SELECTORS.get(name)(seed=seed, **options)
    return selector
