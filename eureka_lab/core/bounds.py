"""Every bound on data that crosses the trust boundary, in one place: what a candidate's
reward may return, what a job may send back, and what is kept of the reasons it gives.

The numbers are generous for honest use and small enough that no candidate can make the
orchestrator, the run store, a page or a prompt hold much of what it chose to send.
"""

from __future__ import annotations

MiB = 1024**2

MAX_COMPONENTS = 32
"""Most named components a reward may return (and a record may hold)."""
MAX_NAME = 64
"""Longest component (or info key) name."""
MAX_REASON = 4000
"""Longest failure reason or traceback kept from a candidate or a job."""
MAX_HEADER = 1 * MiB
"""Largest JSON header of one frame a job sends."""
MAX_ARTEFACT = 64 * MiB
"""Largest artefact attached to one frame: a policy's parameters, a trainer's saved
state, a rollout video."""
MAX_TOTAL = 1024 * MiB
"""Most bytes one job may send in all."""
MAX_FRAMES = 100_000
"""Most frames one job may send."""
MAX_ANSWER_CHARS = 200_000
"""The longest model answer the orchestrator reads, in characters (about 50,000 tokens). A
reward answer takes a few thousand; a reasoning model that thinks aloud in the answer up to
a 32,000-token completion writes about 130,000. A longer answer is refused unread and kept
cut to this length (:func:`eureka_lab.reward.answer.cut_answer`), so that the time one
answer costs the orchestrator is bounded: parsing reads an answer in linear time."""
