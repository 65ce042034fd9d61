"""Typed records of a run: one schema each, validated when written and when read.

Everything a run stores goes through these models and the run store's methods
(:mod:`eureka_lab.runs.store`). Records that carry data from a process that ran candidate code
(:class:`TrainingReport`, :class:`CheckpointStats`) are bounded here: strings are cut,
component names and counts are limited, numbers must be finite, unknown keys are refused.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from eureka_lab.core.bounds import MAX_COMPONENTS, MAX_REASON
from eureka_lab.core.text import safe_name, safe_text

FORMAT_VERSION = 2
"""Version of the run-directory format. 1 (eureka-lab 0.1, no version recorded): untyped
records, fitness measured in the process that ran reward code; 2: typed records, fitness
measured by the evaluator."""


def _finite(x: float | None) -> float | None:
    if x is not None and not math.isfinite(x):
        raise ValueError(f"must be a finite number, got {x}")
    return x


Num = Annotated[float, AfterValidator(_finite)]
OptNum = Annotated[float | None, AfterValidator(_finite)]
Reason = Annotated[str, AfterValidator(lambda s: safe_text(s, MAX_REASON))]
Name = Annotated[str, AfterValidator(safe_name)]


class Record(BaseModel):
    """Base of every record: unknown keys are refused, values validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Stats(Record):
    """Mean, min and max of a reward component since the previous checkpoint."""

    mean: Num
    min: Num
    max: Num


def _bounded_components(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_COMPONENTS:
        raise ValueError(f"{len(value)} components; at most {MAX_COMPONENTS} are kept")
    return value


class CheckpointStats(Record):
    """What training reports at a checkpoint (from the process that ran reward code)."""

    step: int = Field(ge=0)
    components: Annotated[dict[Name, Stats], AfterValidator(_bounded_components)]
    episodes: int = Field(0, ge=0)
    episode_length: OptNum = None
    env_return: OptNum = None
    reward_return: OptNum = None
    seconds: Num = 0.0


class Signal(Record):
    """One named quantity over the evaluation episodes (means over episodes)."""

    name: Name
    start: Num
    end: Num
    min: Num
    max: Num
    mean: Num


EventKind = Literal["goal", "terminated", "fall", "flip", "still"]


class Event(Record):
    """Something notable the policy did: reaching the goal, a fall, a flip, standing
    still."""

    kind: EventKind
    """goal: episodes the env ended that succeeded (the task's success threshold, or the
    env's own ``is_success`` info); fall: ended by a simulated body whose root can rise and
    fall (it fell or tipped over); terminated: ended by the env's own condition otherwise."""
    episodes: int
    """In how many of the evaluation episodes."""
    step: OptNum = None
    """fall: the mean step it happened at."""
    value: OptNum = None
    """flip: mean turns of the root (signed); still: mean displacement."""


MAX_SIGNALS = 12


class Behaviour(Record):
    """What the policy did in the evaluation episodes, described task-agnostically by the
    evaluator: no reward code, no fitness function."""

    episodes: int
    length: Num
    terminated: int
    truncated: int
    signals: list[Signal] = Field(default_factory=list, max_length=MAX_SIGNALS)
    """Most informative first: the simulator's root state, then observation entries."""
    action_magnitude: OptNum = None
    action_at_limits: OptNum = None
    """Share of action entries within 2% of a bound (continuous actions)."""
    events: list[Event] = Field(default_factory=list, max_length=3)

    def __str__(self) -> str:
        from eureka_lab.runs import behaviour_text

        return behaviour_text.text(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from eureka_lab.runs import behaviour_text

        return behaviour_text.to_html(self)


class Evaluation(Record):
    """The checkpoint policy's score, measured by the evaluator (no reward code there); no
    fitness for a task that only a person judges."""

    step: int = Field(ge=0)
    fitness: OptNum
    success_rate: OptNum = None
    eval_env_return: OptNum = None
    eval_length: OptNum = None
    eval_episodes: int | None = None
    """Evaluation episodes behind these numbers."""
    behaviour: Behaviour | None = None


class Checkpoint(CheckpointStats):
    """A checkpoint: training statistics, and the evaluation once it is measured: on the
    episodes that choose the best checkpoint, and, for the one chosen, on held-out
    episodes."""

    fitness: OptNum = None
    success_rate: OptNum = None
    eval_env_return: OptNum = None
    eval_length: OptNum = None
    eval_episodes: int | None = None
    behaviour: Behaviour | None = None
    held_out_fitness: OptNum = None
    """The score on held-out episodes, which chose nothing (the chosen checkpoint only)."""
    held_out_success_rate: OptNum = None


class TrainingReport(Record):
    """How training ended, as the training process says (never its score)."""

    steps: int = Field(ge=0)
    seconds: Num
    components: list[Name] = Field(default_factory=list, max_length=MAX_COMPONENTS)


Status = Literal["trained", "failed"]


class TrainingResult(Record):
    """The result of training one reward: scores from the evaluator, never from training."""

    status: Status
    stage: str | None = None
    reason: Reason | None = None
    traceback: Reason | None = None
    fitness: OptNum = None
    """The training's score: its best checkpoint's mean on held-out episodes, which did not
    choose it (runs before held-out scoring: the chosen checkpoint's own mean)."""
    success_rate: OptNum = None
    selection_fitness: OptNum = None
    """The best checkpoint's mean on the episodes that chose it: biased upwards (the
    maximum of noisy means), kept to show by how much."""
    eval_episodes: int | None = None
    """Held-out episodes behind ``fitness``."""
    best_step: int | None = None
    final_fitness: OptNum = None
    final_success_rate: OptNum = None
    steps: int = 0
    seconds: Num = 0.0
    steps_per_second: Num = 0.0
    components: list[Name] = Field(default_factory=list)
    wall_seconds: Num = 0.0
    target: int | None = None
    """The steps this training was asked to reach (None: the run's budget)."""
    spent_steps: int | None = None
    """Env steps spent on this reward over every round of training (None: ``steps``; more
    than ``steps`` where a trainer that cannot continue started a round again)."""
    stopped_at: int | None = None
    """Successive halving stopped training here (steps), the reward being in the worse half."""

    @property
    def spent(self) -> int:
        return self.steps if self.spent_steps is None else self.spent_steps


class Validation(Record):
    """A short run of the reward on real transitions, in the sandbox."""

    ok: bool
    components: list[Name] = Field(default_factory=list, max_length=MAX_COMPONENTS)
    transitions: int = 0
    seconds: Num = 0.0
    stage: str | None = None
    reason: Reason | None = None
    traceback: Reason | None = None


CandidateStatus = Literal["parsed", "failed", "duplicate", "valid"]
Stage = Literal["model", "parse", "policy", "validation", "training"]


class Candidate(Record):
    """One answer of the model, from parsing to validation (training: :class:`TrainingResult`)."""

    id: str
    iteration: int
    index: int
    repair: int = 0
    parent: str | None = None
    """The candidate this one repairs."""
    based_on: str | None = None
    """The best candidate whose answer and feedback the sampling prompt carried."""
    status: CandidateStatus = "failed"
    stage: Stage | None = None
    reason: Reason | None = None
    traceback: Reason | None = None
    digest: str | None = None
    duplicate_of: str | None = None
    parse: Reason | None = None
    policy: list[Reason] = Field(default_factory=list)
    components: list[Name] = Field(default_factory=list)
    validation: Validation | None = None


class Entrant(Record):
    """One reward in a race: its scores on the race's seeds."""

    id: str
    scores: list[Num]
    """One held-out score per seed it trained on, in the race's seed order."""
    out_after: int | None = None
    """The number of seeds after which it was out: beaten beyond noise by the leader."""
    p: OptNum = None
    """Welch's p-value of the leader against it, when it went out (or, for the runner-up,
    at the end)."""


class Race(Record):
    """How an iteration's best rewards and the run's best raced on fresh seeds: each round
    trains every reward still in the race on one more seed, and a reward the leader beats
    beyond noise is out, until one is left or the seeds run out."""

    seeds: list[int]
    """The seeds raced on, the search's first; every reward still in at the end has all."""
    entrants: list[Entrant]
    winner: str
    incumbent: str | None = None
    """The run's best before the race (it keeps its place unless beaten on equal seeds)."""
    decided: bool
    """Whether the winner beat the runner-up beyond noise (else: the higher mean, undecided)."""
    test: str = "Welch's t-test"


class Iteration(Record):
    """A finished iteration: its candidates and how selection ordered the trained ones."""

    iteration: int
    candidates: list[str]
    trained: int
    ranking: list[list[str]] = Field(default_factory=list)
    """Trained candidates, best first; candidates in one inner list are tied."""
    best: str | None = None
    best_fitness: OptNum = None
    run_best: str | None = None
    """The run's best after this iteration (its best, or an earlier one the selector kept)."""
    race: Race | None = None
    """The race on fresh seeds that chose the run's best (selection by score only)."""


class Ranking(Record):
    """One preference query: how an annotator (a person, an oracle) ordered candidates."""

    annotator: Name
    time: float
    iteration: int
    candidates: list[str]
    order: list[list[str]]
    """Best first; candidates in one inner list are tied."""
    comments: dict[str, Reason] = Field(default_factory=dict)
    """Per candidate, in the annotator's words."""
    overall: Reason | None = None
    cant_tell: bool = False
    labels: dict[str, str] | None = None
    """A blind query (the final verdict): the neutral label each candidate was shown
    under, label to id; ``order`` and ``comments`` name the candidates themselves."""
    shuffle_seed: int | None = None
    """A blind query: the seed of the shuffle that gave the labels."""

    @property
    def query(self) -> tuple[str, int, tuple[str, ...]]:
        """The question this ranking answers: who was asked to order which candidates in
        which iteration. A run records one answer per question."""
        return self.annotator, self.iteration, tuple(sorted(self.candidates))

    def pairs(self) -> list[tuple[str, str]]:
        """The ranking as pairwise comparisons (preferred, other); ties give none."""
        return [
            (a, b)
            for i, better in enumerate(self.order)
            for worse in self.order[i + 1 :]
            for a in better
            for b in worse
        ]


class FinalRow(Record):
    """One reward of the closing comparison (best, human, sparse) over the final seeds."""

    fitness: OptNum = None
    """Mean over the seeds that trained."""
    std: OptNum = None
    """Standard deviation over those seeds (None with fewer than two)."""
    interval: list[Num] | None = None
    """The mean's 95% interval over those seeds (None with fewer than two)."""
    success_rate: OptNum = None
    per_seed: list[OptNum] = Field(default_factory=list)
    failed: list[Reason | None] = Field(default_factory=list)
    reward: str


class Test(Record):
    """A stated test of one reward against another over the final seeds."""

    test: str = "Welch's t-test"
    difference: Num
    """mean(first) - mean(second)."""
    p: OptNum = None
    """Two-sided p-value (None with fewer than two seeds on a side)."""
    interval: list[Num] | None = None
    """The difference's 95% interval."""


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


BestVsHuman = Literal["better", "worse", "within noise"]
"""How the final best compares with the human reward over the final seeds."""
Verdict = Literal["best", "human", "can't tell"]
"""Which of the final best and human rewards a person preferred."""


class RunSummary(Record):
    """The result of a run."""

    task: str
    best: str
    best_search_fitness: OptNum = None
    """The best's score in the search: the mean over the seeds it trained on there of its
    held-out scores (runs before held-out scoring: its best checkpoint's own mean)."""
    best_search_std: OptNum = None
    """That score's spread over its search seeds (None with one seed)."""
    best_search_seeds: int | None = None
    """How many search seeds ``best_search_fitness`` rests on."""
    best_search_interval: list[Num] | None = None
    """Its 95% interval over those seeds (None with one seed)."""
    seeds: list[int]
    timesteps: int
    final: dict[str, FinalRow]
    normalized_score: OptNum = None
    """(best - sparse) / |human - sparse|: only where the human reward beats the sparse one
    beyond noise (``human_vs_sparse``); None otherwise, where it is undefined."""
    best_vs_human: BestVsHuman | None = None
    """Whether best and human differ beyond noise over the final seeds (``best_vs_human_test``)."""
    best_vs_human_test: Test | None = None
    human_vs_sparse_test: Test | None = None
    best_vs_sparse_test: Test | None = None
    """What the reward design bought over training on the task's own signal."""
    eval_episodes: int | None = None
    """Evaluation episodes per checkpoint in the final comparison."""
    preference_queries: int = 0
    """Rankings asked of an annotator (a person, an oracle) during the run."""
    verdict: Verdict | None = None
    """Which of the final best and human rewards the annotator preferred, from their
    rollout videos (selection by a person)."""
    usage: Usage = Field(default_factory=Usage)

    @field_validator("final")
    @classmethod
    def _names(cls, v: dict[str, FinalRow]) -> dict[str, FinalRow]:
        unknown = set(v) - {"best", "human", "sparse"}
        if unknown:
            raise ValueError(f"unknown rewards in the final comparison: {sorted(unknown)}")
        return v
