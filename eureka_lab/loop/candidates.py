"""Candidates: the model's answers parsed into reward programs, checked against the policy,
de-duplicated, validated on real transitions in sandboxed jobs, and sent back with their
error for repair. Every step is recorded; a recorded candidate is reused on resume."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError

from eureka_lab.core.text import safe_text
from eureka_lab.executors.base import JobOutput
from eureka_lab.executors.job import JobSpec
from eureka_lab.loop.jobs import Jobs
from eureka_lab.loop.journal import Journal
from eureka_lab.loop.requests import Requests
from eureka_lab.prompt.conversation import Completion, Evidence, Message, Prompt
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.reward.check import check_code
from eureka_lab.reward.parsing import code_digest, parse_response
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Candidate, Validation
from eureka_lab.runs.store import candidate_id
from eureka_lab.task.model import Task

MAX_VIOLATIONS_SHOWN = 10
"""Policy violations quoted in a candidate's reason (all of them, up to 50, are kept)."""


class Candidates:
    """Turns answers into candidates that are ready to train (status ``valid``)."""

    def __init__(
        self,
        journal: Journal,
        task: Task,
        config: LoopConfig,
        prompts: PromptBook,
        requests: Requests,
        jobs: Jobs,
        evidence: Callable[[int], Evidence],
    ) -> None:
        self.journal = journal
        self.store = journal.store
        self.task = task
        self.config = config
        self.prompts = prompts
        self.requests = requests
        self.jobs = jobs
        self.evidence = evidence
        """What the LLM-free backends learn from at an iteration (scored code so far)."""

    def from_answers(
        self,
        it: int,
        answers: Sequence[Completion],
        based_on: str | None,
        opening: Sequence[Message],
    ) -> list[Candidate]:
        """One candidate per answer, parsed and checked; then validated, and those that fail
        sent back for repair (``repair_rounds`` times) after the run's ``opening``."""
        cands = [self.parse(it, k, 0, a, None, based_on) for k, a in enumerate(answers)]
        self.validate(cands)
        for round_ in range(1, self.config.repair_rounds + 1):
            broken = [
                c
                for c in cands
                if c.status == "failed" and c.repair == round_ - 1 and c.stage != "model"
            ]
            if not broken:
                break
            repaired = [self.repair(it, c, round_, opening) for c in broken]
            self.validate(repaired)
            cands += repaired
        return cands

    def parse(
        self,
        it: int,
        index: int,
        repair: int,
        completion: Completion,
        parent: str | None,
        based_on: str | None = None,
    ) -> Candidate:
        """Parse one answer into a candidate (or reuse the recorded one on resume)."""
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
                twin = self.twin(cand.digest, cid)
                if violations:
                    more = len(violations) - MAX_VIOLATIONS_SHOWN
                    cand.stage = "policy"
                    cand.reason = "; ".join(violations[:MAX_VIOLATIONS_SHOWN]) + (
                        f"; and {more} more" if more > 0 else ""
                    )
                elif twin is not None:
                    cand.status = "duplicate"
                    cand.duplicate_of = twin
                    cand.reason = f"same code as {twin}"
                else:
                    cand.status = "parsed"
        self.store.save_candidate(cand)
        self.journal.emit(
            "candidate", id=cid, status=cand.status, stage=cand.stage, reason=cand.reason
        )
        return cand

    def twin(self, digest: str, cid: str) -> str | None:
        """An earlier candidate with the same program (comments and layout aside)."""
        for cand in self.store.candidates():
            if cand.digest == digest and cand.id != cid and cand.status != "duplicate":
                return cand.id
        return None

    def validate(self, cands: list[Candidate]) -> None:
        """Run each parsed candidate's reward on real transitions in a sandboxed job."""
        todo = [c for c in cands if c.status == "parsed"]
        task = self.task.model_dump(mode="json")
        jobs = [
            self.jobs.make(
                c.id,
                JobSpec("validate", task, self.store.reward_code(c.id), seed=self.config.seed),
                self.config.validation_timeout,
            )
            for c in todo
        ]
        outputs = self.jobs.run(jobs)
        for c in todo:
            val = validation(outputs[c.id])
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
            self.journal.emit("candidate", id=c.id, status=c.status, stage=c.stage, reason=c.reason)

    def repair(
        self, it: int, broken: Candidate, round_: int, opening: Sequence[Message]
    ) -> Candidate:
        """Send a candidate that failed back to the model with its error."""
        error = broken.traceback or broken.reason or ""
        messages = [
            *opening,
            Message("assistant", self.store.response(broken.id) or ""),
            Message("user", self.prompts.render("repair", stage=broken.stage, traceback=error)),
        ]
        known = self.evidence(it)
        evidence = Evidence(
            iteration=it,
            seeds=known.seeds,
            scored=known.scored,
            failed_code=self.store.reward_code(broken.id),
            error=error,
        )
        key = f"iter_{it:02d}-repair-{broken.index:02d}-r{round_}"
        prompt = Prompt(tuple(messages), "repair", it, evidence, key=key)
        self.journal.emit("repair_requested", id=broken.id, reason=broken.reason)
        (completion,) = self.requests.ask(prompt, 1)
        return self.parse(it, broken.index, round_, completion, broken.id, broken.based_on)


def validation(output: JobOutput) -> Validation:
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
