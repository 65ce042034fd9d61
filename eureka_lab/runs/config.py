"""The settings of one run (the task carries the environment-specific ones), as recorded in
its ``config.json`` and read back by ``resume``, ``load_run`` and the report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from eureka_lab.core.errors import ConfigError
from eureka_lab.core.plugins import EXECUTORS, FEEDBACK, SELECTORS

SCHEDULES = ("full", "halving")


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one run (the task carries the environment-specific ones)."""

    iterations: int = 3
    """Rounds of sampling, training and feedback."""
    samples: int = 4
    """Candidates asked of the model per iteration (K)."""
    timesteps: int | None = None
    """Training budget per candidate in env steps; None: the task's default."""
    seed: int = 0
    """Seed of training and of LLM-free backends."""
    workers: int = os.cpu_count() or 1
    """Jobs run in parallel (one process each)."""
    repair_rounds: int = 1
    """Times a candidate that failed validation is sent back with its error."""
    race_seeds: int = 3
    """Most training seeds a reward gets when an iteration's best rewards and the run's best
    race on fresh seeds (1: no race; the first seed is the search's)."""
    race_size: int = 2
    """An iteration's rewards that race the run's best (its best by their first seed)."""
    final_seeds: int = 5
    """Seeds for the closing comparison of best, human and sparse rewards; never the search's
    seeds, so the best is not replayed on the draws it won with. Five give Welch's t-test
    a chance to call a real difference of one spread."""
    final_eval_factor: int = 2
    """The closing comparison evaluates on this many times the task's evaluation episodes."""
    validation_timeout: float = 120.0
    """Wall-clock limit of a validation job, in seconds."""
    train_timeout: float | None = None
    """Wall-clock limit per training; None: 300 s + 10 ms per timestep."""
    executor: str = "local"
    """Where jobs run (a name registered in ``eureka_lab.core.plugins.EXECUTORS``)."""
    executor_options: dict[str, Any] = field(default_factory=dict)
    """The executor's own settings (``--executor-option key=value``), e.g. Ray's
    ``address``; an option the executor does not take is an error naming it."""
    selection: str = "fitness"
    """How candidates are ranked (a name in ``eureka_lab.core.plugins.SELECTORS``)."""
    selection_options: dict[str, Any] = field(default_factory=dict)
    """Options of the selection mode (the oracle's ``noise`` and ``mistakes``; the ranking
    page's ``host`` and ``port``)."""
    feedback: str | None = None
    """What the next prompt is built from (a name in ``eureka_lab.core.plugins.FEEDBACK``);
    None: what the selection mode needs (``reflection`` for fitness, ``preference`` for a
    person's or an oracle's ranking)."""
    schedule: str = "full"
    """``full``: every candidate trains for the whole budget. ``halving``: successive
    halving: all train for a fraction of it, the better half by fitness goes on, until one
    has the whole budget."""
    allow_weak_sandbox: bool = False
    """Run candidate code even where an OS isolation layer is missing."""
    videos: bool = False
    """Render a rollout video of each trained candidate's best policy (in the evaluator);
    always on where the selection mode ranks videos."""
    video_steps: int = 200
    """Longest video, in env steps (a finished episode ends it sooner)."""
    video_size: tuple[int, int] = (320, 240)
    """Video width and height in pixels."""
    video_fps: int = 30
    """Video frame rate."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "video_size", tuple(self.video_size))  # a list, from JSON
        for name in (
            "iterations",
            "samples",
            "workers",
            "final_seeds",
            "final_eval_factor",
            "race_seeds",
            "race_size",
            "video_steps",
            "video_fps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.timesteps is not None and self.timesteps < 1:
            raise ConfigError(f"timesteps must be positive, got {self.timesteps}.")
        if self.repair_rounds < 0:
            raise ConfigError(f"repair_rounds must be 0 or more, got {self.repair_rounds}.")
        EXECUTORS.get(self.executor)  # an unknown name: ConfigError naming near matches
        selector = SELECTORS.get(self.selection)
        FEEDBACK.get(self.feedback_mode)
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"Unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}."
            )
        if self.schedule == "halving" and getattr(selector, "annotator", None) is not None:
            raise ConfigError(
                "schedule 'halving' keeps the better half of the candidates by fitness between "
                f"rounds, and selection {self.selection!r} asks for preferences instead: use "
                f"--schedule full with --selection {self.selection}."
            )

    @property
    def feedback_mode(self) -> str:
        """The feedback mode: the one set, else what the selection mode needs."""
        if self.feedback is not None:
            return self.feedback
        return str(getattr(SELECTORS.get(self.selection), "feedback", "reflection"))

    @property
    def final_seed_list(self) -> list[int]:
        """Seeds of the closing comparison: disjoint from the search's seed."""
        return [self.seed + 1000 * (j + 1) for j in range(self.final_seeds)]

    @classmethod
    def from_record(cls, record: dict[str, Any], **overrides: Any) -> LoopConfig:
        """The settings a run recorded (``config.json``'s ``loop``), from any version:
        ``ray_address`` (before executors took options) becomes an executor option."""
        raw = dict(record)
        address = raw.pop("ray_address", None)
        if address is not None:
            raw["executor_options"] = {"address": address, **raw.get("executor_options", {})}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**raw, **overrides}.items() if k in known})
