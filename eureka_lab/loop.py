"""The reward-synthesis loop: task -> context -> prompt -> model -> candidates -> sandbox ->
training -> evaluation -> selection -> feedback -> next prompt, everything recorded in the
run store.

Every step first looks in the run store for its result, so re-running the loop on an
existing run (``resume``) continues where it stopped: finished candidates are not
re-trained and answers already received are not asked for again.

The seams are chosen by name in :class:`LoopConfig`: the executor that runs jobs, the
selection mode that ranks candidates, the feedback mode that builds the next prompt; the
task names its trainer.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from eureka_lab.backends.base import Backend
from eureka_lab.conversation import (
    Completion,
    Evidence,
    Message,
    Prompt,
    ScoredCode,
    Usage,
)
from eureka_lab.errors import BudgetExceeded, ConfigError, RunError
from eureka_lab.executor import Executor, Job, JobEvent, JobOutput, make_executor
from eureka_lab.feedback import Material, Tried, component_means, idea_of, make_feedback
from eureka_lab.parsing import code_digest, cut_answer, parse_response
from eureka_lab.prompting import PromptBook
from eureka_lab.records import (
    Candidate,
    Checkpoint,
    CheckpointStats,
    Evaluation,
    FinalRow,
    Iteration,
    Ranking,
    RunSummary,
    TrainingReport,
    TrainingResult,
    Validation,
)
from eureka_lab.records import Usage as UsageRecord
from eureka_lab.selection import Trained, make_selector
from eureka_lab.store import RunStore, candidate_id, final_id
from eureka_lab.task import Task
from eureka_lab.text import safe_text
from eureka_lab.worker import JobSpec

Reporter = Callable[[dict[str, Any]], None]

TRIED_ITERATIONS = 2
"""Iterations whose candidates the next prompt lists (the table of attempts)."""
MAX_POLICY_BYTES = 64 * 1024**2
MAX_VIDEO_BYTES = 64 * 1024**2
"""Largest policy (safetensors bytes) accepted from a training process."""


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
    final_seeds: int = 3
    """Seeds for the closing comparison of best, human and sparse rewards; never the search's
    seed, so the best is not replayed on the draw it won with."""
    final_eval_factor: int = 2
    """The closing comparison evaluates on this many times the task's evaluation episodes."""
    validation_timeout: float = 120.0
    """Wall-clock limit of a validation job, in seconds."""
    train_timeout: float | None = None
    """Wall-clock limit per training; None: 300 s + 10 ms per timestep."""
    executor: str = "local"
    """Where jobs run (a name registered in ``eureka_lab.executor.EXECUTORS``)."""
    ray_address: str | None = None
    """The Ray cluster for ``executor="ray"``; None: a Ray instance on this machine."""
    selection: str = "fitness"
    """How candidates are ranked (a name in ``eureka_lab.selection.SELECTORS``)."""
    selection_options: dict[str, Any] = field(default_factory=dict)
    """Options of the selection mode (the oracle's ``noise`` and ``mistakes``; the ranking
    page's ``host`` and ``port``)."""
    feedback: str = "reflection"
    """What the next prompt is built from (a name in ``eureka_lab.feedback.FEEDBACK``)."""
    schedule: str = "full"
    """``full``: every candidate trains for the whole budget. ``halving``: successive
    halving: all train for a fraction of it, the better half by fitness goes on, until one
    has the whole budget."""
    allow_weak_sandbox: bool = False
    """Run candidate code even where an OS isolation layer is missing."""
    videos: bool = False
    """Render a rollout video of each trained candidate's best policy (in the evaluator)."""
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
            "video_steps",
            "video_fps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.timesteps is not None and self.timesteps < 1:
            raise ConfigError(f"timesteps must be positive, got {self.timesteps}.")
        if self.repair_rounds < 0:
            raise ConfigError(f"repair_rounds must be 0 or more, got {self.repair_rounds}.")
        from eureka_lab.executor import EXECUTORS
        from eureka_lab.feedback import FEEDBACK
        from eureka_lab.selection import SELECTORS

        for registry, name in (
            (EXECUTORS, self.executor),
            (SELECTORS, self.selection),
            (FEEDBACK, self.feedback),
        ):
            registry.get(name)  # an unknown name: ConfigError naming near matches
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"Unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}."
            )
        if self.schedule == "halving" and self.selection != "fitness":
            raise ConfigError(
                "schedule 'halving' keeps the better half of the candidates by fitness between "
                "rounds, so it needs selection 'fitness': use --schedule full with "
                f"--selection {self.selection}."
            )
        if self.selection == "human" and not self.videos:
            raise ConfigError(
                "selection by a person needs rollout videos to rank: add videos=True (--videos)."
            )


@dataclass(frozen=True)
class _Training:
    """One training to run: where it is recorded, the reward (None: the env's own), a seed."""

    key: str
    code: str | None
    seed: int


class Loop:
    """One run of the loop over a run store. Call :meth:`run`."""

    def __init__(
        self,
        store: RunStore,
        task: Task,
        config: LoopConfig,
        backend: Backend,
        reporter: Reporter | None = None,
        prompts: PromptBook | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.store = store
        self.task = task
        self.config = config
        self.backend = backend
        self.reporter = reporter
        self.prompts = prompts or PromptBook()
        options = {"address": config.ray_address} if config.executor == "ray" else {}
        self.executor = executor or make_executor(
            config.executor, config.workers, config.allow_weak_sandbox, **options
        )
        self.selector = make_selector(
            config.selection, seed=config.seed, **config.selection_options
        )
        if hasattr(self.selector, "attach"):
            self.selector.attach(store, task.description, self._announce)
        self.feedback = make_feedback(config.feedback)
        self.trainer = task.trainer.make()
        self._resumable = bool(getattr(self.trainer, "resumable", False))
        self.timesteps = config.timesteps or task.timesteps
        self.seeds = tuple(task.reward_source(r) or "" for r in task.seed_rewards)
        self._live: dict[str, list[Checkpoint]] = {}
        self._groups: dict[str, list[str]] = {}
        """Group jobs running now (their key: the members' keys in order)."""
        if not task.has_fitness and getattr(self.selector, "annotator", None) in (None, "oracle"):
            raise ConfigError(
                f"Task {task.name!r} has no fitness (fitness: none), so only a person can "
                "rank its candidates: use --feedback human (a page with videos) or --feedback "
                "text (the terminal)."
            )
        if config.videos:
            from eureka_lab.video import can_render

            why = can_render(task)
            if why is not None:
                raise ConfigError(f"{why}. Run without videos (leave out --videos).")

    # ------------------------------------------------------------------ plumbing
    def emit(self, kind: str, **fields: Any) -> None:
        record = self.store.event(kind, **fields)
        if self.reporter is not None:
            self.reporter(record)

    def _ask(self, prompt: Prompt, n: int) -> list[Completion]:
        """The model's answers to ``prompt`` (the recorded ones on resume), each cut to the
        longest answer the parser reads, so that no record, prompt or file holds more."""
        recorded = self.store.load_request(prompt.key)
        if recorded is not None:
            return _cut_answers(recorded)
        completions = _cut_answers(self.backend.complete(prompt, n))
        ok = sum(c.ok for c in completions)
        if ok == 0 and prompt.purpose == "sample":
            # Not recorded as the answer, so that resuming asks again.
            self.store.save_request(prompt, n, completions, self.backend.name, failed=True)
            errors = "; ".join(
                sorted({safe_text(c.error or "empty answer", 300) for c in completions})
            )
            raise RunError(
                f"The model returned no usable answer to {prompt.key} ({errors}). Fix the "
                f"endpoint or settings, then continue with: eureka-lab resume {self.store.root}"
            )
        self.store.save_request(prompt, n, completions, self.backend.name)
        usage = sum((c.usage for c in completions), start=Usage())
        self.emit(
            "model_answered",
            key=prompt.key,
            ok=ok,
            failed=n - ok,
            usage=asdict(usage),
            run_cost_usd=self.store.usage().cost_usd,
            errors=[safe_text(c.error, 300) for c in completions if c.error][:3],
        )
        return completions

    def _announce(self, url: str) -> None:
        """Tell the person where to rank (the reporter only: the URL carries a token)."""
        self.emit("ranking_waiting")
        if self.reporter is not None:
            self.reporter({"event": "ranking_url", "url": url})
        else:
            print(f"rank the candidates at {url}", flush=True)

    def _opening(self) -> list[Message]:
        from eureka_lab.context import build_context

        context = self.store.context()
        if context is None:
            context = build_context(self.task).to_prompt(self.prompts)
            self.store.save_context(context)
        return self.prompts.opening(
            env_id=self.task.env_id,
            context=context,
            description=self.task.description,
            n_envs=_envs(self.trainer, self.timesteps),
            facts=self._facts(),
        )

    def _facts(self) -> dict[str, Any]:
        """What a reward engineer needs to know about training and scoring."""
        env = self.task.make_env()
        try:
            dt = getattr(env.unwrapped, "dt", None)
            spec = getattr(env, "spec", None)
            limit = self.task.max_episode_steps or getattr(spec, "max_episode_steps", None)
        finally:
            env.close()
        return {
            "dt": None if dt is None else float(f"{dt:.6g}"),
            "time_limit": limit,
            "timesteps": f"{self.timesteps:,}",
            **self.trainer.describe(),
            "eval_episodes": self.task.eval_episodes,
            "checkpoints": self.task.checkpoints,
            "fitness_description": self.task.fitness_description,
            "success_threshold": self.task.success_threshold,
        }

    def _trained(self, cid: str) -> Trained | None:
        cand, result = self.store.candidate(cid), self.store.result(cid)
        if cand is None or result is None or result.status != "trained":
            return None
        return Trained(cand, result, self.store.checkpoints(cid))

    def _rank(self, trained: Sequence[Trained], iteration: int) -> list[list[str]]:
        """The selector's ranking; a preference query (a person's, an oracle's) is recorded."""
        ranking = self.selector.rank(trained)
        annotator = getattr(self.selector, "annotator", None)
        if annotator is not None and not getattr(self.selector, "records_itself", False):
            self.store.append_ranking(
                Ranking(
                    annotator=annotator,
                    time=time.time(),
                    iteration=iteration,
                    candidates=[t.id for t in trained],
                    order=ranking,
                )
            )
            self.emit("preference", iteration=iteration, annotator=annotator, order=ranking)
        return ranking

    def _best_of(self, trained: Sequence[Trained], iteration: int) -> Trained:
        """The first of the selector's ranking (earlier entries win ties)."""
        ranking = self._rank(trained, iteration)
        by_id = {t.id: t for t in trained}
        return by_id[ranking[0][0]]

    # ------------------------------------------------------------------ the run
    def run(self) -> RunSummary:
        recorded = self.store.config
        settings = {
            "task": self.task.model_dump(mode="json"),
            "loop": asdict(self.config),
            "llm": recorded.get("llm", self.backend.name),
        }
        if any(recorded.get(k) != v for k, v in settings.items()):
            self.store.save_config({**recorded, **settings})
        removed = self.store.remove_temporary_files()
        self.emit("run_started", task=self.task.name, run=str(self.store.root))
        if removed:
            self.emit("temporary_files_removed", paths=removed[:50], count=len(removed))
        self.emit("sandbox", layers=self.executor.describe())
        opening = self._opening()
        best: Trained | None = None
        for it in range(self.config.iterations):
            done = self.store.iteration(it)
            if done is None:
                try:
                    done = self.iteration(it, opening, best)
                except BudgetExceeded as e:
                    self.emit("budget_reached", iteration=it, message=str(e))
                    break
            if done.run_best is not None:
                best = self._trained(done.run_best) or best
        if best is None:
            raise RunError(
                "No candidate trained successfully in any iteration; see `eureka-lab show "
                f"{self.store.root}` for the reasons, then resume with more samples or another "
                "model."
            )
        summary = self.final(best)
        self.emit("run_finished", best=summary.best, normalized_score=summary.normalized_score)
        return summary

    def iteration(self, it: int, opening: list[Message], best: Trained | None) -> Iteration:
        self.emit("iteration_started", iteration=it)
        messages = list(opening)
        if best is not None:
            ranked = [best, *self._last_ranked(it - 1, best.id)]
            material = Material(
                ranked=ranked,
                responses={t.id: self.store.response(t.id) or "" for t in ranked},
                tried=self._tried(range(max(0, it - TRIED_ITERATIONS), it)),
                codes={t.id: self.store.reward_code(t.id) or "" for t in ranked},
                rankings=self.store.rankings(),
            )
            messages += self.feedback.messages(self.prompts, material)
        prompt = Prompt(
            tuple(messages), "sample", it, self._evidence(it), key=f"iter_{it:02d}-sample"
        )
        completions = self._ask(prompt, self.config.samples)
        based_on = best.id if best is not None else None
        cands = [self._candidate(it, k, 0, c, None, based_on) for k, c in enumerate(completions)]
        self._validate(cands)
        for round_ in range(1, self.config.repair_rounds + 1):
            broken = [
                c
                for c in cands
                if c.status == "failed" and c.repair == round_ - 1 and c.stage != "model"
            ]
            if not broken:
                break
            repaired = [self._repair(it, c, opening, round_) for c in broken]
            self._validate(repaired)
            cands += repaired
        valid = [c for c in cands if c.status == "valid"]
        trainings = [_Training(c.id, self.store.reward_code(c.id), self.config.seed) for c in valid]
        if self.config.schedule == "halving":
            self._halving(trainings)
        else:
            self._train(trainings)
        trained = [t for t in (self._trained(c.id) for c in cands) if t is not None]
        ranking = self._rank(trained, it) if trained else []
        best_id = ranking[0][0] if ranking else None
        best_result = self.store.result(best_id) if best_id else None
        newest = self._trained(best_id) if best_id else None
        run_best = best
        if newest is not None:
            keep_newest = best is None or getattr(self.selector, "prefers_newest", False)
            run_best = newest if keep_newest else self._best_of([newest, best], it)
        record = Iteration(
            iteration=it,
            candidates=[c.id for c in cands],
            trained=len(trained),
            ranking=ranking,
            best=best_id,
            best_fitness=best_result.fitness if best_result else None,
            run_best=run_best.id if run_best is not None else None,
        )
        self.store.save_iteration(record)
        self.emit("iteration_finished", **record.model_dump(exclude={"ranking", "run_best"}))
        return record

    def _last_ranked(self, it: int, skip: str) -> list[Trained]:
        """Iteration ``it``'s trained candidates in its ranking's order, but ``skip``."""
        record = self.store.iteration(it) if it >= 0 else None
        ids = [cid for group in (record.ranking if record else []) for cid in group]
        return [t for t in (self._trained(c) for c in ids if c != skip) if t is not None]

    def _tried(self, iterations: range) -> list[Tried]:
        """The candidates of ``iterations`` as the table of attempts shows them."""
        out = []
        for it in iterations:
            for cand in self.store.candidates(it):
                result = self.store.result(cand.id)
                status = result.status if result else cand.status
                if result is not None and result.stopped_at is not None:
                    status = (
                        f"stopped early, scored at {result.stopped_at:,} of "
                        f"{self.timesteps:,} steps"
                    )
                out.append(
                    Tried(
                        id=cand.id,
                        iteration=it,
                        idea=idea_of(self.store.response(cand.id) or ""),
                        components=cand.components,
                        status=status,
                        fitness=result.fitness if result else None,
                        reason=(cand.reason or (result.reason if result else None))
                        if status == "failed"
                        else None,
                    )
                )
        return out

    def _evidence(self, it: int) -> Evidence:
        scored = []
        for cand in self.store.candidates():
            res = self.store.result(cand.id)
            if res is not None and res.status == "trained":
                cps = [c.model_dump() for c in self.store.checkpoints(cand.id)]
                code = self.store.reward_code(cand.id) or ""
                scored.append(ScoredCode(code, res.fitness, component_means(cps)))
        return Evidence(iteration=it, seeds=self.seeds, scored=tuple(scored))

    # ------------------------------------------------------------------ candidates
    def _candidate(
        self,
        it: int,
        index: int,
        repair: int,
        completion: Completion,
        parent: str | None,
        based_on: str | None = None,
    ) -> Candidate:
        """Parse one answer into a candidate (or reuse the recorded one on resume)."""
        from eureka_lab.policy import check_code

        cid = candidate_id(it, index, repair)
        existing = self.store.candidate(cid)
        if existing is not None:
            return existing
        cand = Candidate(
            id=cid, iteration=it, index=index, repair=repair, parent=parent, based_on=based_on
        )
        self.store.save_response(cid, completion.text or "")
        if not completion.ok:
            cand.stage = "model"
            cand.reason = f"the model request failed: {completion.error}"
        else:
            parsed = parse_response(completion.text or "")
            cand.parse = parsed.reason
            if parsed.code is None:
                cand.stage = "parse"
                cand.reason = f"no usable code: {parsed.reason}"
            else:
                self.store.save_reward_code(cid, parsed.code)
                cand.digest = code_digest(parsed.code)
                violations = check_code(parsed.code)
                cand.policy = violations[:50]
                twin = self._twin(cand.digest, cid)
                if violations:
                    more = f"; and {len(violations) - 10} more" if len(violations) > 10 else ""
                    cand.stage = "policy"
                    cand.reason = "; ".join(violations[:10]) + more
                elif twin is not None:
                    cand.status = "duplicate"
                    cand.duplicate_of = twin
                    cand.reason = f"same code as {twin}"
                else:
                    cand.status = "parsed"
        self.store.save_candidate(cand)
        self.emit("candidate", id=cid, status=cand.status, stage=cand.stage, reason=cand.reason)
        return cand

    def _twin(self, digest: str, cid: str) -> str | None:
        for cand in self.store.candidates():
            if cand.digest == digest and cand.id != cid and cand.status != "duplicate":
                return cand.id
        return None

    def _job(self, key: str, spec: JobSpec, timeout: float) -> Job:
        """A job with the trainer's resources; only training takes a GPU share."""
        resources = self.trainer.resources
        if spec.kind != "train" and resources.gpus:
            resources = replace(resources, device="cpu", gpus=0.0)
        spec = replace(spec, private=(str(self.store.root),))
        return Job(key, spec, timeout, resources)

    def _validate(self, cands: list[Candidate]) -> None:
        todo = [c for c in cands if c.status == "parsed"]
        task = self.task.model_dump(mode="json")
        jobs = [
            self._job(
                c.id,
                JobSpec("validate", task, self.store.reward_code(c.id), seed=self.config.seed),
                self.config.validation_timeout,
            )
            for c in todo
        ]
        outputs = self.executor.run(jobs)
        for c in todo:
            val = _validation(outputs[c.id])
            c.validation = val
            if val.ok:
                c.status = "valid"
                c.components = val.components
            else:
                c.status = "failed"
                c.stage = "validation"
                c.reason = val.reason
                c.traceback = val.traceback
            self.store.save_candidate(c)
            self.emit("candidate", id=c.id, status=c.status, stage=c.stage, reason=c.reason)

    def _repair(self, it: int, broken: Candidate, opening: list[Message], round_: int) -> Candidate:
        error = broken.traceback or broken.reason or ""
        messages = [
            *opening,
            Message("assistant", self.store.response(broken.id) or ""),
            Message("user", self.prompts.render("repair", stage=broken.stage, traceback=error)),
        ]
        evidence = Evidence(
            iteration=it,
            seeds=self.seeds,
            scored=self._evidence(it).scored,
            failed_code=self.store.reward_code(broken.id),
            error=error,
        )
        key = f"iter_{it:02d}-repair-{broken.index:02d}-r{round_}"
        prompt = Prompt(tuple(messages), "repair", it, evidence, key=key)
        self.emit("repair_requested", id=broken.id, reason=broken.reason)
        (completion,) = self._ask(prompt, 1)
        return self._candidate(it, broken.index, round_, completion, broken.id, broken.based_on)

    # ------------------------------------------------------------------ training
    def _video(self) -> dict[str, int] | None:
        if not self.config.videos:
            return None
        width, height = self.config.video_size
        return {
            "steps": self.config.video_steps,
            "width": width,
            "height": height,
            "fps": self.config.video_fps,
        }

    def _halving(self, trainings: list[_Training]) -> None:
        """Successive halving: train every reward to a fraction of the budget, keep the
        better half by fitness, continue, until one reward has the whole budget. Rounds
        already recorded are not trained again (the cut is re-derived from the results)."""
        rounds = math.ceil(math.log2(len(trainings))) if len(trainings) > 1 else 0
        alive = list(trainings)
        for r in range(rounds + 1):
            target = self.timesteps if r == rounds else max(1, self.timesteps >> (rounds - r))
            self._train(alive, target=target, keep_state=r < rounds)
            if r == rounds:
                return
            results = {t.key: self.store.result(t.key) for t in alive}
            ranked = sorted(
                (t for t in alive if (res := results[t.key]) and res.status == "trained"),
                key=lambda t: -_score(results[t.key]),
            )
            keep = ranked[: math.ceil(len(alive) / 2)]
            for t in ranked[len(keep) :]:
                res = results[t.key]
                if res is not None and res.stopped_at is None:
                    res.stopped_at = res.steps
                    self.store.save_result(t.key, res)
                    self.emit("candidate_stopped", id=t.key, steps=res.steps, fitness=res.fitness)
            alive = keep

    def _train(
        self,
        trainings: list[_Training],
        episodes: int | None = None,
        videos: set[str] | None = None,
        target: int | None = None,
        keep_state: bool = False,
    ) -> None:
        """Train each reward in a sandboxed job to ``target`` steps (default: the budget),
        then score its new checkpoints in evaluation jobs that never load reward code.
        A reward already trained that far, failed or stopped is skipped; one trained part of
        the way (a round of halving) continues from its saved state, or starts again where
        its trainer cannot continue."""
        target = target or self.timesteps
        task = self.task.model_dump(mode="json")
        timeout = self.config.train_timeout or 300 + target / 100
        every = max(1, self.timesteps // self.task.checkpoints)
        jobs = []
        starts: dict[str, int] = {}
        for t in trainings:
            prior = self.store.result(t.key)
            if prior is not None and (
                prior.status != "trained"
                or prior.stopped_at is not None
                or (prior.target or self.timesteps) >= target
            ):
                continue
            state = self.store.training_state(t.key, prior.steps) if prior is not None else None
            if prior is not None and state is not None and self._resumable:
                start, resume = prior.steps, state
                # Checkpoints past the result's are a round cut short by a kill: redone.
                self._live[t.key] = [c for c in self.store.checkpoints(t.key) if c.step <= start]
            else:
                start, resume = 0, None
                # A training cut short starts again. A finished round's result stays until
                # the new round's replaces it: what it spent still counts (``_result``).
                self.store.clear_training(t.key, keep_result=prior is not None)
                self._live[t.key] = []
            starts[t.key] = start
            if t.code is not None:
                self.store.save_reward_code(t.key, t.code)
            spec = JobSpec(
                "train",
                task,
                t.code,
                seed=t.seed,
                timesteps=target,
                checkpoints=self.task.checkpoints,
                start=start,
                resume=resume,
                keep_state=keep_state and self._resumable,
                every=every,
            )
            jobs.append(self._job(t.key, spec, timeout))
            self.emit("training_started", id=t.key, timesteps=target, start=start)
        if not jobs:
            return
        outputs = self._run_trainings(jobs)
        reports: dict[str, TrainingReport] = {}
        for job in jobs:
            report = self._training_report(job.key, outputs[job.key], starts[job.key])
            if isinstance(report, TrainingResult):
                self._record(job.key, report)
            else:
                reports[job.key] = report
        evals = [
            self._job(
                key,
                JobSpec(
                    "evaluate",
                    task,
                    episodes=episodes or self.task.eval_episodes,
                    policies={
                        c.step: self.store.policy(key, c.step) or b""
                        for c in self._live[key]
                        if c.step > starts[key]
                    },
                    video=self._video() if videos is None or key in videos else None,
                ),
                300 + 10 * self.task.checkpoints * (episodes or self.task.eval_episodes),
            )
            for key in reports
        ]
        for key, output in self.executor.run(evals, on_event=self._on_video).items():
            self._record(key, self._result(key, reports[key], output, starts[key], target))
        self._live = {}

    def _run_trainings(self, jobs: list[Job]) -> dict[str, JobOutput]:
        """Run training jobs: ``group`` fresh ones with one seed per process where the
        trainer trains several at once (its ``group`` setting), each alone otherwise. The
        outputs and events of a group's job are split back to its members' keys."""
        size = int(getattr(self.trainer, "group", 1))
        runs: list[Job] = []
        together: dict[int, list[Job]] = {}
        for job in jobs:
            if size > 1 and job.spec.start == 0 and job.spec.resume is None:
                together.setdefault(job.spec.seed, []).append(job)
            else:
                runs.append(job)
        self._groups = {}
        for same in together.values():
            for i in range(0, len(same), size):
                members = same[i : i + size]
                if len(members) == 1:
                    runs.extend(members)
                    continue
                key = "+".join(j.key for j in members)
                self._groups[key] = [j.key for j in members]
                spec = replace(
                    members[0].spec, code=None, group=tuple(j.spec.code for j in members)
                )
                runs.append(
                    replace(
                        members[0], key=key, spec=spec, timeout=members[0].timeout * len(members)
                    )
                )
                self.emit("training_grouped", ids=[j.key for j in members])
        outputs = self.executor.run(runs, on_event=self._on_event)
        for key, members in self._groups.items():
            outputs.update(_member_outputs(outputs.pop(key), members))
        self._groups = {}
        return outputs

    def _on_video(self, event: JobEvent) -> None:
        """A video from an evaluation job (which never runs reward code): check it looks
        like an mp4 and keep it."""
        if event.kind != "video" or event.key not in self._live:
            return
        from eureka_lab.video import looks_like_mp4

        data = event.artefact or b""
        if len(data) <= MAX_VIDEO_BYTES and looks_like_mp4(data):
            self.store.save_video(event.key, data)
            self.emit("video", id=event.key, bytes=len(data))
        else:
            self.emit("video_refused", id=event.key, bytes=len(data))

    def _on_event(self, event: JobEvent) -> None:
        """A checkpoint from a training job: validate it, keep its policy, report progress;
        or a resumable trainer's state. A group's frame goes to the member it names. A
        video is refused: it would show what the evaluator never rolled out."""
        if event.key in self._groups:
            member = event.data.get("member")
            keys = self._groups[event.key]
            if type(member) is not int or not 0 <= member < len(keys):
                self.emit("checkpoint_refused", id=event.key, reason="no valid member")
                return
            data = {k: v for k, v in event.data.items() if k != "member"}
            event = replace(event, key=keys[member], data=data)
        if event.kind == "video":
            self.emit("video_refused", id=event.key, reason="sent by a training job")
            return
        if event.kind == "state" and event.key in self._live:
            state = _checked_arrays(event.artefact)
            step = event.data.get("step")
            if state is not None and type(step) is int and step >= 0:
                self.store.save_training_state(event.key, step, state)
            else:
                self.emit("state_refused", id=event.key)
            return
        if event.kind != "checkpoint" or event.key not in self._live:
            return
        live = self._live[event.key]
        try:
            stats = CheckpointStats.model_validate(event.data)
        except ValidationError as e:
            self.emit("checkpoint_refused", id=event.key, reason=safe_text(e, 500))
            return
        policy = _checked_arrays(event.artefact)
        if policy is None or (live and stats.step <= live[-1].step):
            self.emit("checkpoint_refused", id=event.key, reason="invalid policy or step")
            return
        self.store.save_policy(event.key, stats.step, policy)
        live.append(Checkpoint(**stats.model_dump()))
        self.store.save_checkpoints(event.key, live)
        if self.reporter is not None:
            self.reporter(
                {
                    "event": "progress",
                    "running": {k: len(v) for k, v in self._live.items()},
                    "checkpoints": self.task.checkpoints,
                }
            )

    def _training_report(
        self, key: str, output: JobOutput, start: int = 0
    ) -> TrainingReport | TrainingResult:
        """What training says (steps, time), or the failed result."""
        res = output.result
        if res is not None and res.get("ok") is True:
            try:
                report = TrainingReport.model_validate({k: v for k, v in res.items() if k != "ok"})
            except ValidationError as e:
                return _failed(
                    "training", f"the job returned an invalid result: {e.errors()[0]['msg']}"
                )
            if not self._live[key] or self._live[key][-1].step <= start:
                return _failed("training", "training reported no checkpoint")
            return report
        if res is not None:
            return _failed(
                "training",
                res.get("reason"),
                res.get("traceback"),
                wall_seconds=output.seconds,
            )
        return _failed("training", output.reason, output.log_tail, wall_seconds=output.seconds)

    def _result(
        self,
        key: str,
        report: TrainingReport,
        output: JobOutput,
        start: int = 0,
        target: int | None = None,
    ) -> TrainingResult:
        """Merge the evaluator's scores into the new checkpoints (those after ``start``; the
        earlier ones were scored in an earlier round); the best one gives the fitness."""
        try:
            if output.result is None:
                raise ValueError(output.reason or "no result")
            evals = [Evaluation.model_validate(e) for e in output.result["evaluations"]]
        except (ValueError, KeyError, TypeError) as e:
            return _failed("evaluation", f"evaluation failed: {safe_text(e, 500)}", output.log_tail)
        by_step = {e.step: e for e in evals}
        cps = [cp for cp in self._live[key] if cp.step <= start] + [
            Checkpoint.model_validate(
                {**cp.model_dump(), **by_step[cp.step].model_dump(exclude={"step"})}
            )
            for cp in self._live[key]
            if cp.step > start and cp.step in by_step
        ]
        if not cps:
            return _failed("evaluation", "no checkpoint was evaluated")
        self.store.save_checkpoints(key, cps)
        scored = [c for c in cps if c.fitness is not None]
        # With no fitness (a task only a person judges) the last checkpoint stands.
        best = max(scored, key=lambda c: c.fitness) if scored else cps[-1]  # type: ignore[arg-type,return-value]
        self.store.save_best_policy(key, self.store.policy(key, best.step) or b"")
        final = cps[-1]
        prior = self.store.result(key)
        earlier = prior.spent if prior is not None else 0
        return TrainingResult(
            status="trained",
            fitness=best.fitness,
            success_rate=best.success_rate,
            best_step=best.step,
            final_fitness=final.fitness,
            final_success_rate=final.success_rate,
            steps=report.steps,
            seconds=report.seconds,
            steps_per_second=round((report.steps - start) / max(report.seconds, 1e-9), 1),
            components=report.components,
            wall_seconds=output.seconds,
            spent_steps=earlier + report.steps - start,
            target=target,
        )

    def _record(self, key: str, result: TrainingResult) -> None:
        self.store.save_result(key, result)
        self.emit(
            "candidate_trained",
            id=key,
            **result.model_dump(
                include={
                    "status",
                    "fitness",
                    "success_rate",
                    "reason",
                    "seconds",
                    "steps_per_second",
                }
            ),
        )

    # ------------------------------------------------------------------ final comparison
    def _verdict(self, seed: int) -> str | None:
        """A person's judgement of the final best against the human reward, from their
        rollout videos (only when a person selects)."""
        if not getattr(self.selector, "records_itself", False):
            return None
        it = self.config.iterations
        best = _final_trained(self.store, final_id("best", seed), 0, it)
        human = _final_trained(self.store, final_id("human", seed), 1, it)
        if best is None or human is None:
            return None
        order = self._rank([best, human], it)
        if len(order) == 1:
            return "can't tell"
        return "best" if order[0] == [best.id] else "human"

    def final(self, best: Trained) -> RunSummary:
        """Train best, human and sparse rewards with the same budget and seeds; compare."""
        codes = {
            "best": self.store.reward_code(best.id),
            "human": self.task.reward_source(self.task.human_reward),
            "sparse": self.task.reward_source(self.task.sparse_reward),
        }
        seeds = final_seeds(self.config)
        trainings = []
        for name, code in codes.items():
            for s in seeds:
                key = final_id(name, s)
                if self.store.reward_code(key) != code:
                    # The best changed since an earlier comparison (a resumed run): redo it.
                    self.store.clear_training(key)
                trainings.append(_Training(key, code, s))
        if any(self.store.result(t.key) is None for t in trainings):
            self.emit("final_started", jobs=len(trainings), seeds=seeds)
        episodes = self.task.eval_episodes * self.config.final_eval_factor
        self._train(
            trainings, episodes=episodes, videos={final_id(name, seeds[0]) for name in codes}
        )
        rows: dict[str, FinalRow] = {}
        for name in codes:
            results = [self.store.result(final_id(name, s)) for s in seeds]
            ok = [r for r in results if r and r.status == "trained" and r.fitness is not None]
            rates = [r.success_rate for r in ok if r.success_rate is not None]
            scores = [r.fitness for r in ok]
            rows[name] = FinalRow(
                fitness=float(np.mean(scores)) if scores else None,
                std=float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
                success_rate=sum(rates) / len(rates) if rates else None,
                per_seed=[r.fitness if r else None for r in results],
                failed=[r.reason for r in results if r and r.status != "trained"],
                reward="env" if codes[name] is None else f"final/{name}",
            )
        b, h, s = (rows[k].fitness for k in ("best", "human", "sparse"))
        score = None
        if b is not None and h is not None and s is not None and abs(h - s) > 1e-12:
            score = (b - s) / abs(h - s)
        verdict = None
        if b is not None and h is not None:
            noise = (rows["best"].std or 0.0) + (rows["human"].std or 0.0)
            verdict = "within noise" if abs(b - h) <= noise else ("better" if b > h else "worse")
        summary = RunSummary(
            verdict=self._verdict(seeds[0]),
            task=self.task.name,
            best=best.id,
            best_search_fitness=best.result.fitness,
            seeds=seeds,
            timesteps=self.timesteps,
            final=rows,
            normalized_score=score,
            best_vs_human=verdict,
            eval_episodes=episodes,
            preference_queries=len(self.store.rankings()),
            usage=UsageRecord(**asdict(self.store.usage())),
        )
        self.store.save_summary(summary)
        return summary


def _final_trained(store: RunStore, key: str, index: int, iteration: int) -> Trained | None:
    result = store.result(key)
    if result is None or result.status != "trained":
        return None
    cand = Candidate(
        id=key, iteration=iteration, index=index, status="valid", components=result.components
    )
    return Trained(cand, result, store.checkpoints(key))


def _cut_answers(completions: list[Completion]) -> list[Completion]:
    """Each answer cut to the longest one the parser reads (:func:`parsing.cut_answer`)."""
    return [replace(c, text=cut_answer(c.text)) if c.text else c for c in completions]


def _envs(trainer: Any, timesteps: int) -> int:
    """The env count the reward sees: chosen from the budget where the trainer does that."""
    choose = getattr(trainer, "envs_for", None)
    return int(choose(timesteps)) if choose is not None else trainer.n_envs


def final_seeds(config: LoopConfig) -> list[int]:
    """Seeds of the closing comparison: disjoint from the search's seed."""
    return [config.seed + 1000 * (j + 1) for j in range(config.final_seeds)]


def _failed(
    stage: str, reason: object, traceback: object = None, wall_seconds: float = 0.0
) -> TrainingResult:
    return TrainingResult(
        status="failed",
        stage=stage,
        reason=safe_text(reason or "failed without a reason", 4000),
        traceback=None if traceback is None else safe_text(traceback, 4000),
        wall_seconds=wall_seconds,
    )


def _validation(output: JobOutput) -> Validation:
    """A validation job's output, checked against the schema."""
    res = output.result
    if res is None:
        return Validation(
            ok=False, stage="validation", reason=output.reason, traceback=output.log_tail or None
        )
    try:
        return Validation.model_validate({k: v for k, v in res.items() if k != "status"})
    except ValidationError as e:
        return Validation(
            ok=False,
            stage="validation",
            reason=f"the job returned an invalid result: {safe_text(e.errors()[0]['msg'], 300)}",
        )


def _score(result: TrainingResult | None) -> float:
    """A result's fitness for ordering (no fitness ranks last)."""
    if result is None or result.fitness is None:
        return -math.inf
    return result.fitness


def _member_outputs(output: JobOutput, keys: list[str]) -> dict[str, JobOutput]:
    """A group job's output as one per member: its own result where the job returned
    one for each, else the job's failure for all of them."""
    res = output.result
    members = res.get("members") if isinstance(res, dict) else None
    if not isinstance(members, list) or len(members) != len(keys):
        if isinstance(res, dict) and res.get("ok") is not False:
            output = replace(output, result=None, reason="the job returned an invalid result")
        return dict.fromkeys(keys, output)
    return {
        key: replace(output, result=r)
        if isinstance(r, dict)
        else replace(output, result=None, reason="the job returned an invalid result")
        for key, r in zip(keys, members, strict=True)
    }


def _checked_arrays(data: bytes | None) -> bytes | None:
    """Arrays (safetensors) from an untrusted process, re-written by us if they are plain,
    finite float arrays within the size limit (safetensors cannot carry code)."""
    from safetensors.numpy import load, save

    if data is None or len(data) > MAX_POLICY_BYTES:
        return None
    try:
        arrays = load(data)
    except Exception:
        return None
    if not arrays or len(arrays) > 1000:
        return None
    clean = {}
    for name, arr in arrays.items():
        if len(name) > 200 or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            return None
        clean[name] = np.ascontiguousarray(arr)
    return save(clean)
