"""The reward-synthesis loop (Eureka), top to bottom:

    for each iteration:
        prompt   = the task and env, then feedback on the best reward so far
        answers  = K rewards written by the model
        rewards  = the answers parsed, checked, validated in a sandbox (broken ones repaired)
        train each reward with PPO in a sandbox; score its policy in a process that never
                   loads reward code
        best     = the selector's choice among them and the best so far, raced on fresh
                   seeds until the difference is beyond noise (selection by score)
    finally: best against the human and the sparse reward, on fresh seeds

Each step is a collaborator (:mod:`.candidates`, :mod:`.training`, :mod:`.selection`,
:mod:`.final`) writing through one :class:`~.journal.Journal`. Every step first looks in
the run store for its result, so running the loop again on a run (``resume``) continues
where it stopped: finished candidates are not re-trained and answers already received are
not asked for again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from eureka_lab.backends.base import Backend
from eureka_lab.core.errors import BudgetExceeded, ConfigError, RunError
from eureka_lab.executors.base import Executor, make_executor
from eureka_lab.feedback.base import Material, component_means, make_feedback
from eureka_lab.loop.candidates import Candidates
from eureka_lab.loop.final import FinalComparison
from eureka_lab.loop.jobs import Jobs
from eureka_lab.loop.journal import Journal, Reporter
from eureka_lab.loop.racing import Racing
from eureka_lab.loop.requests import Requests
from eureka_lab.loop.selection import Selection
from eureka_lab.loop.training import Training, Trainings
from eureka_lab.prompt.context import build_context
from eureka_lab.prompt.conversation import Evidence, Message, Prompt, ScoredCode
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Iteration, RunSummary
from eureka_lab.runs.scores import Scores, Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import make_selector
from eureka_lab.task.model import Task
from eureka_lab.trainers import task_trainer
from eureka_lab.trainers.default import with_trainer

__all__ = ["Loop", "LoopConfig", "Reporter"]

TRIED_ITERATIONS = 2
"""Iterations whose candidates the next prompt lists (the table of attempts)."""


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
        # A task that names no trainer gets the default here, for the run and its jobs, and
        # the run's config records it (api.run chooses it first and says so).
        task = with_trainer(task)[0]
        self.store = store
        self.task = task
        self.config = config
        self.backend = backend
        self.prompts = prompts or PromptBook()
        self.journal = Journal(store, reporter)
        self.executor = executor or make_executor(
            config.executor, config.workers, config.allow_weak_sandbox, **config.executor_options
        )
        selector = make_selector(config.selection, seed=config.seed, **config.selection_options)
        selector.attach(store, task.description, self._announce)
        if not task.has_fitness and selector.needs_fitness:
            raise ConfigError(
                f"Task {task.name!r} has no fitness (fitness: none), so only a person can "
                "rank its candidates: use --selection human (a page with videos) or "
                "--selection text (the terminal)."
            )
        videos = config.videos or selector.needs_videos
        if videos:
            from eureka_lab.evaluation.video import can_render

            why = can_render(task)
            if why is not None:
                raise ConfigError(f"{why}. Run without videos (leave out --videos).")
        self.feedback = make_feedback(config.feedback_mode)
        self.trainer = task_trainer(task)
        self.timesteps = config.timesteps or task.timesteps
        self.seeds = tuple(task.reward_source(r) or "" for r in task.seed_rewards)
        self.scores = Scores(store, self.timesteps, config.seed)
        self.selection = Selection(self.journal, selector)
        self.requests = Requests(self.journal, backend)
        jobs = Jobs(self.executor, self.trainer, private=[str(store.root)])
        self.candidates = Candidates(
            self.journal, task, config, self.prompts, self.requests, jobs, self._evidence
        )
        self.trainings = Trainings(
            self.journal, task, config, self.trainer, jobs, self.timesteps, videos
        )
        self.racing = Racing(self.journal, config, self.trainings, self.scores)
        self.races = selector.races and task.has_fitness and config.race_seeds > 1
        """Whether the run's best is chosen by a race on fresh seeds (selection by score)."""
        self.final = FinalComparison(
            self.journal, task, config, self.trainings, self.selection, self.scores
        )

    # ------------------------------------------------------------------ the run
    def run(self) -> RunSummary:
        """Every iteration not yet recorded, then the closing comparison."""
        self._record_settings()
        removed = self.store.remove_temporary_files()
        self.journal.emit("run_started", task=self.task.name, run=str(self.store.root))
        if removed:
            self.journal.emit("temporary_files_removed", paths=removed[:50], count=len(removed))
        self.journal.emit("sandbox", layers=self.executor.describe())
        opening = self._opening()
        best: Trained | None = None
        for it in range(self.config.iterations):
            done = self.store.iteration(it)
            if done is None:
                try:
                    done = self.iteration(it, opening, best)
                except BudgetExceeded as e:
                    self.journal.emit("budget_reached", iteration=it, message=str(e))
                    break
            if done.run_best is not None:
                best = self.scores.trained(done.run_best) or best
        if best is None:
            raise RunError(
                "No candidate trained successfully in any iteration; see `eureka-lab show "
                f"{self.store.root}` for the reasons, then resume with more samples or another "
                "model."
            )
        summary = self.final.run(best)
        self.journal.emit(
            "run_finished", best=summary.best, normalized_score=summary.normalized_score
        )
        return summary

    def iteration(self, it: int, opening: list[Message], best: Trained | None) -> Iteration:
        """Sample K rewards with feedback on ``best``, train them, choose the run's best."""
        self.journal.emit("iteration_started", iteration=it)
        prompt = self._sampling_prompt(it, opening, best)
        answers = self.requests.ask(prompt, self.config.samples)
        based_on = best.id if best is not None else None
        cands = self.candidates.from_answers(it, answers, based_on, opening)
        valid = [c for c in cands if c.status == "valid"]
        self.trainings.run(
            [Training(c.id, self.store.reward_code(c.id), self.config.seed) for c in valid]
        )
        # Ranked on the search's seed, which each of them trained on: a resumed run may
        # already hold the race's further seeds, and must rank as the first try did.
        trained = self.scores.all_trained((c.id for c in cands), seeds=[self.config.seed])
        ranking = self.selection.rank(trained, it) if trained else []
        newest = self.scores.trained(ranking[0][0]) if ranking else None
        race = None
        entrants = self.racing.entrants(self._in_order(ranking), best) if self.races else []
        if len(entrants) > 1:  # the run's best: raced on fresh seeds
            race = self.racing.run(it, entrants, best)
            run_best = self.scores.trained(race.winner)
        else:
            run_best = self.selection.keep(best, newest, it)
        record = Iteration(
            iteration=it,
            candidates=[c.id for c in cands],
            trained=len(trained),
            ranking=ranking,
            best=newest.id if newest else None,
            best_fitness=newest.result.fitness if newest else None,
            run_best=run_best.id if run_best is not None else None,
            race=race,
        )
        self.store.save_iteration(record)
        estimate = self.scores.estimate(run_best.id) if run_best is not None else None
        self.journal.emit(
            "iteration_finished",
            **record.model_dump(exclude={"ranking", "race"}),
            run_best_score=estimate.text() if estimate else None,
        )
        return record

    def _in_order(self, ranking: list[list[str]]) -> list[Trained]:
        return self.scores.all_trained(cid for group in ranking for cid in group)

    # ------------------------------------------------------------------ prompts
    def _opening(self) -> list[Message]:
        """The system message and the task, with the env as the model sees it."""
        context = self.store.context()
        if context is None:
            context = build_context(self.task).to_prompt(self.prompts)
            self.store.save_context(context)
        facts = self._facts()
        return self.prompts.opening(
            env_id=self.task.env_id,
            context=context,
            description=self.task.description,
            n_envs=facts["n_envs"],
            facts=facts,
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
            "n_envs": self.trainer.envs_for(self.timesteps),
            **self.trainer.describe(),
            "eval_episodes": self.task.eval_episodes,
            "checkpoints": self.task.checkpoints,
            "has_fitness": self.task.has_fitness,
            "fitness_description": self.task.fitness_description,
            "success_threshold": self.task.success_threshold,
        }

    def _sampling_prompt(self, it: int, opening: list[Message], best: Trained | None) -> Prompt:
        """The opening, then (after the first iteration) feedback on the best so far."""
        messages = list(opening)
        if best is not None:
            ranked = [best, *self.scores.ranked(it - 1, skip=best.id)]
            material = Material(
                ranked=ranked,
                responses={t.id: self.store.response(t.id) or "" for t in ranked},
                tried=self.scores.tried(range(max(0, it - TRIED_ITERATIONS), it)),
                codes={t.id: self.store.reward_code(t.id) or "" for t in ranked},
                rankings=self.store.rankings(),
                noise=self.scores.noise(),
            )
            messages += self.feedback.messages(self.prompts, material)
        return Prompt(
            tuple(messages), "sample", it, self._evidence(it), key=f"iter_{it:02d}-sample"
        )

    def _evidence(self, it: int) -> Evidence:
        """What the LLM-free backends learn from: every scored reward so far."""
        scored = []
        for cand in self.store.candidates():
            res = self.store.result(cand.id)
            if res is not None and res.status == "trained":
                cps = [c.model_dump() for c in self.store.checkpoints(cand.id)]
                code = self.store.reward_code(cand.id) or ""
                scored.append(ScoredCode(code, res.fitness, component_means(cps)))
        return Evidence(iteration=it, seeds=self.seeds, scored=tuple(scored))

    # ------------------------------------------------------------------ plumbing
    def _record_settings(self) -> None:
        recorded = self.store.config
        settings = {
            "task": self.task.model_dump(mode="json"),
            "loop": asdict(self.config),
            "llm": recorded.get("llm", self.backend.name),
        }
        if any(recorded.get(k) != v for k, v in settings.items()):
            self.store.save_config({**recorded, **settings})

    def _announce(self, url: str, question: str | None = None) -> None:
        """Tell the person where to rank (the reporter only: the URL carries a token), and
        what, where it is not the usual question (the final verdict). An empty URL: the
        person answers at the terminal, and only the waiting is recorded."""
        self.journal.emit("ranking_waiting", question=question)
        if not url:
            return
        if self.journal.reporter is not None:
            self.journal.show("ranking_url", url=url, question=question, task=self.task.name)
        else:
            print(
                f"{question} Judge them at {url}" if question else f"rank the candidates at {url}",
                flush=True,
            )
