"""Trainings: each reward trained in a sandboxed job (several to a process where the trainer
trains groups), its new checkpoints scored in evaluation jobs that never load reward code,
and the two merged into its result. Successive halving trains in rounds on top of this."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pydantic import ValidationError

from eureka_lab.core.bounds import MAX_REASON
from eureka_lab.core.text import safe_text
from eureka_lab.evaluation.evaluator import choose
from eureka_lab.executors.base import Job, JobOutput
from eureka_lab.executors.job import JobSpec
from eureka_lab.loop.intake import Intake
from eureka_lab.loop.jobs import Jobs
from eureka_lab.loop.journal import Journal
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Checkpoint, Evaluation, TrainingReport, TrainingResult
from eureka_lab.task.model import Task
from eureka_lab.trainers.base import Trainer


@dataclass(frozen=True)
class Training:
    """One training to run: where it is recorded, the reward (None: the env's own), a seed."""

    key: str
    code: str | None
    seed: int


class Trainings:
    """Trains rewards and records what they scored."""

    def __init__(
        self,
        journal: Journal,
        task: Task,
        config: LoopConfig,
        trainer: Trainer,
        jobs: Jobs,
        timesteps: int,
        videos: bool,
    ) -> None:
        self.journal = journal
        self.store = journal.store
        self.task = task
        self.config = config
        self.trainer = trainer
        self.jobs = jobs
        self.timesteps = timesteps
        """The full budget of one training."""
        self.videos = videos
        """Whether evaluation renders the best checkpoint's rollout."""
        self.intake = Intake(journal, task.checkpoints)

    def run(self, trainings: list[Training]) -> None:
        """Train every reward to the full budget, or by successive halving (``schedule``)."""
        if self.config.schedule == "halving":
            self.halving(trainings)
        else:
            self.train(trainings)

    def halving(self, trainings: list[Training]) -> None:
        """Successive halving: train every reward to a fraction of the budget, keep the
        better half by fitness, continue, until one reward has the whole budget. Rounds
        already recorded are not trained again (the cut is re-derived from the results)."""
        rounds = math.ceil(math.log2(len(trainings))) if len(trainings) > 1 else 0
        alive = list(trainings)
        for r in range(rounds + 1):
            target = self.timesteps if r == rounds else max(1, self.timesteps >> (rounds - r))
            self.train(alive, target=target, keep_state=r < rounds)
            if r == rounds:
                return
            results = {t.key: self.store.result(t.key) for t in alive}
            ranked = sorted(
                (t for t in alive if (res := results[t.key]) and res.status == "trained"),
                key=lambda t: -score(results[t.key]),
            )
            keep = ranked[: math.ceil(len(alive) / 2)]
            for t in ranked[len(keep) :]:
                res = results[t.key]
                if res is not None and res.stopped_at is None:
                    res.stopped_at = res.steps
                    self.store.save_result(t.key, res)
                    self.journal.emit(
                        "candidate_stopped", id=t.key, steps=res.steps, fitness=res.fitness
                    )
            alive = keep

    def train(
        self,
        trainings: list[Training],
        episodes: int | None = None,
        videos: set[str] | None = None,
        target: int | None = None,
        keep_state: bool = False,
    ) -> None:
        """Train each reward in a sandboxed job to ``target`` steps (default: the budget),
        then score its new checkpoints in evaluation jobs that never load reward code.
        A reward already trained that far, failed or stopped is skipped; one trained part of
        the way (a round of halving) continues from its saved state, or starts again where
        its trainer cannot continue. ``videos``: the keys whose rollout is rendered (None:
        every one, when the run renders videos)."""
        target = target or self.timesteps
        task = self.task.model_dump(mode="json")
        timeout = self.config.train_timeout or 300 + target / 100
        every = max(1, self.timesteps // self.task.checkpoints)
        live = self.intake.live
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
            if prior is not None and state is not None and self.trainer.resumable:
                start, resume = prior.steps, state
                # Checkpoints past the result's are a round cut short by a kill: redone.
                live[t.key] = [c for c in self.store.checkpoints(t.key) if c.step <= start]
            else:
                start, resume = 0, None
                # A training cut short starts again. A finished round's result stays until
                # the new round's replaces it: what it spent still counts (``_result``).
                self.store.clear_training(t.key, keep_result=prior is not None)
                live[t.key] = []
            starts[t.key] = start
            # Checkpoints fall on multiples of ``every`` before the target, and at it.
            later = range((start // every + 1) * every, target, every)
            self.intake.expected[t.key] = len(live[t.key]) + len(later) + 1
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
                keep_state=keep_state and self.trainer.resumable,
                every=every,
            )
            jobs.append(self.jobs.make(t.key, spec, timeout))
            self.journal.emit("training_started", id=t.key, timesteps=target, start=start)
        if not jobs:
            return
        outputs = self._run_trainings(jobs)
        reports: dict[str, TrainingReport] = {}
        for job in jobs:
            report = self._report(job.key, outputs[job.key], starts[job.key])
            if isinstance(report, TrainingResult):
                self._record(job.key, report)
            else:
                reports[job.key] = report
        evals = [
            self.jobs.make(
                key,
                JobSpec(
                    "evaluate",
                    task,
                    episodes=episodes or self.task.eval_episodes,
                    policies={
                        c.step: self.store.policy(key, c.step) or b""
                        for c in live[key]
                        if c.step > starts[key]
                    },
                    video=self._video() if videos is None or key in videos else None,
                ),
                300 + 10 * self.task.checkpoints * (episodes or self.task.eval_episodes),
            )
            for key in reports
        ]
        for key, output in self.jobs.run(evals, on_event=self.intake.evaluation).items():
            self._record(key, self._result(key, reports[key], output, starts[key], target))
        self.intake.live, self.intake.expected = {}, {}

    def _video(self) -> dict[str, int] | None:
        if not self.videos:
            return None
        width, height = self.config.video_size
        return {
            "steps": self.config.video_steps,
            "width": width,
            "height": height,
            "fps": self.config.video_fps,
        }

    def _run_trainings(self, jobs: list[Job]) -> dict[str, JobOutput]:
        """Run training jobs: ``group`` fresh ones with one seed per process where the
        trainer trains several at once, each alone otherwise. The outputs and events of a
        group's job are split back to its members' keys."""
        size = self.trainer.group
        runs: list[Job] = []
        together: dict[int, list[Job]] = {}
        for job in jobs:
            if size > 1 and job.spec.start == 0 and job.spec.resume is None:
                together.setdefault(job.spec.seed, []).append(job)
            else:
                runs.append(job)
        groups = self.intake.groups = {}
        for same in together.values():
            for i in range(0, len(same), size):
                members = same[i : i + size]
                if len(members) == 1:
                    runs.extend(members)
                    continue
                key = "+".join(j.key for j in members)
                groups[key] = [j.key for j in members]
                spec = replace(
                    members[0].spec, code=None, group=tuple(j.spec.code for j in members)
                )
                runs.append(
                    replace(
                        members[0], key=key, spec=spec, timeout=members[0].timeout * len(members)
                    )
                )
                self.journal.emit("training_grouped", ids=[j.key for j in members])
        outputs = self.jobs.run(runs, on_event=self.intake.training)
        for key, member_keys in groups.items():
            outputs.update(member_outputs(outputs.pop(key), member_keys))
        self.intake.groups = {}
        return outputs

    def _report(
        self, key: str, output: JobOutput, start: int = 0
    ) -> TrainingReport | TrainingResult:
        """What training says (steps, time), or the failed result."""
        res = output.result
        live = self.intake.live[key]
        if res is not None and res.get("ok") is True:
            try:
                report = TrainingReport.model_validate({k: v for k, v in res.items() if k != "ok"})
            except ValidationError as e:
                return failed(
                    "training", f"the job returned an invalid result: {e.errors()[0]['msg']}"
                )
            if not live or live[-1].step <= start:
                return failed("training", "training reported no checkpoint")
            return report
        if res is not None:
            return failed(
                "training",
                res.get("reason"),
                res.get("traceback"),
                wall_seconds=output.seconds,
            )
        return failed("training", output.reason, output.log_tail, wall_seconds=output.seconds)

    def _result(
        self,
        key: str,
        report: TrainingReport,
        output: JobOutput,
        start: int = 0,
        target: int | None = None,
    ) -> TrainingResult:
        """Merge the evaluator's scores into the new checkpoints (those after ``start``; the
        earlier ones were scored in an earlier round). The best checkpoint on the choosing
        episodes is the policy kept; its held-out score is the training's fitness."""
        live = self.intake.live[key]
        try:
            if output.result is None:
                raise ValueError(output.reason or "no result")
            evals = [Evaluation.model_validate(e) for e in output.result["evaluations"]]
            raw = output.result.get("held_out")
            held_out = None if raw is None else Evaluation.model_validate(raw)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return failed("evaluation", f"evaluation failed: {safe_text(e, 500)}", output.log_tail)
        by_step = {e.step: e.model_dump(exclude={"step"}) for e in evals}
        if held_out is not None and held_out.step in by_step:
            by_step[held_out.step].update(
                held_out_fitness=held_out.fitness, held_out_success_rate=held_out.success_rate
            )
        cps = [cp for cp in live if cp.step <= start] + [
            Checkpoint.model_validate({**cp.model_dump(), **by_step[cp.step]})
            for cp in live
            if cp.step > start and cp.step in by_step
        ]
        if not cps:
            return failed("evaluation", "no checkpoint was evaluated")
        self.store.save_checkpoints(key, cps)
        best = choose(cps)
        self.store.save_best_policy(key, self.store.policy(key, best.step) or b"")
        final = cps[-1]
        prior = self.store.result(key)
        earlier = prior.spent if prior is not None else 0
        honest = best.held_out_fitness is not None
        return TrainingResult(
            status="trained",
            fitness=best.held_out_fitness if honest else best.fitness,
            success_rate=best.held_out_success_rate if honest else best.success_rate,
            selection_fitness=best.fitness,
            eval_episodes=best.eval_episodes,
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
        self.journal.emit(
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


def failed(
    stage: str, reason: object, traceback: object = None, wall_seconds: float = 0.0
) -> TrainingResult:
    """A failed training's result, its reason and traceback bounded and escaped."""
    return TrainingResult(
        status="failed",
        stage=stage,
        reason=safe_text(reason or "failed without a reason", MAX_REASON),
        traceback=None if traceback is None else safe_text(traceback, MAX_REASON),
        wall_seconds=wall_seconds,
    )


def score(result: TrainingResult | None) -> float:
    """A result's fitness for ordering (no fitness ranks last)."""
    if result is None or result.fitness is None:
        return -math.inf
    return result.fitness


def member_outputs(output: JobOutput, keys: list[str]) -> dict[str, JobOutput]:
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
