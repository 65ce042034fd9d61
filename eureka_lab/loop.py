"""The reward-synthesis loop: task -> context -> prompt -> model -> candidates -> sandbox ->
training -> feedback -> next prompt, everything recorded in the run store.

Every step first looks in the run store for its result, so re-running the loop on an
existing run (``eureka-lab resume``) continues where it stopped: finished candidates are not
re-trained and answers already received are not asked for again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from eureka_lab.backends.base import (
    Backend,
    Completion,
    Evidence,
    Message,
    Prompt,
    ScoredCode,
    Usage,
)
from eureka_lab.errors import BudgetExceeded, ConfigError, RunError
from eureka_lab.executor import Job, LocalExecutor
from eureka_lab.feedback import component_means, reflection
from eureka_lab.prompting import PromptBook
from eureka_lab.store import (
    CANDIDATE,
    CHECKPOINTS,
    CONTEXT,
    RESPONSE,
    RESULT,
    REWARD,
    SUMMARY,
    VALIDATION,
    RunStore,
    candidate_id,
    final_dir,
    iteration_rel,
)
from eureka_lab.task import Task
from eureka_lab.worker import job_payload

Reporter = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one run (the task carries the environment-specific ones)."""

    iterations: int = 3
    """Rounds of sampling, training and feedback."""
    samples: int = 4
    """Candidates asked of the model per iteration (K)."""
    timesteps: int | None = None
    """PPO budget per candidate; None: the task's default."""
    seed: int = 0
    """Seed of training and of LLM-free backends."""
    workers: int = os.cpu_count() or 1
    """Candidates trained in parallel (one process and one torch thread each)."""
    repair_rounds: int = 1
    """Times a candidate that failed validation is sent back with its error."""
    final_seeds: int = 1
    """Seeds for the closing comparison of best, human and sparse rewards."""
    validation_timeout: float = 120.0
    train_timeout: float | None = None
    """Wall-clock limit per training; None: 300 s + 10 ms per timestep."""

    def __post_init__(self) -> None:
        for name in ("iterations", "samples", "workers", "final_seeds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1.")
        if self.timesteps is not None and self.timesteps < 1:
            raise ConfigError(f"--timesteps must be positive, got {self.timesteps}.")
        if self.repair_rounds < 0:
            raise ConfigError("--repair-rounds must be 0 or more.")


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
        executor: LocalExecutor | None = None,
    ) -> None:
        self.store = store
        self.task = task
        self.config = config
        self.backend = backend
        self.reporter = reporter
        self.prompts = prompts or PromptBook()
        self.executor = executor or LocalExecutor(config.workers)
        self.timesteps = config.timesteps or task.timesteps
        self.seeds = tuple(task.reward_source(r) or "" for r in task.seed_rewards)

    # ------------------------------------------------------------------ plumbing
    def emit(self, kind: str, **fields: Any) -> None:
        record = self.store.event(kind, **fields)
        if self.reporter is not None:
            self.reporter(record)

    def _ask(self, prompt: Prompt, n: int) -> list[Completion]:
        recorded = self.store.load_request(prompt.key)
        if recorded is not None:
            return recorded
        completions = self.backend.complete(prompt, n)
        ok = sum(c.ok for c in completions)
        if ok == 0 and prompt.purpose == "sample":
            # Not recorded as the answer, so that resuming asks again.
            self.store.save_request(prompt, n, completions, self.backend.name, failed=True)
            errors = "; ".join(sorted({c.error or "empty answer" for c in completions}))
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
            errors=[c.error for c in completions if c.error][:3],
        )
        return completions

    def _opening(self) -> list[Message]:
        from eureka_lab.context import build_context

        if not self.store.exists(CONTEXT):
            self.store.write_text(CONTEXT, build_context(self.task).to_prompt())
        return self.prompts.opening(
            env_id=self.task.env_id,
            context=self.store.path(CONTEXT).read_text(),
            description=self.task.description,
            n_envs=self.task.ppo.n_envs,
        )

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        self.emit("run_started", task=self.task.name, run=str(self.store.root))
        self.emit("sandbox", layers=self.executor.describe())
        opening = self._opening()
        best: dict[str, Any] | None = None
        for it in range(self.config.iterations):
            done = self.store.read(iteration_rel(it))
            if done is None:
                try:
                    done = self.iteration(it, opening, best)
                except BudgetExceeded as e:
                    self.emit("budget_reached", iteration=it, message=str(e))
                    break
            if done.get("best") is not None:
                cand = self._load(done["best"])
                if best is None or cand["result"]["fitness"] >= best["result"]["fitness"]:
                    best = cand
        if best is None:
            raise RunError(
                "No candidate trained successfully in any iteration; see `eureka-lab show "
                f"{self.store.root}` for the reasons, then resume with more samples or another "
                "model."
            )
        summary = self.final(best)
        self.emit("run_finished", **{k: summary[k] for k in ("best", "normalized_score")})
        return summary

    def _load(self, cid: str) -> dict[str, Any]:
        rec = self.store.read(f"{cid}/{CANDIDATE}")
        rec["result"] = self.store.read(f"{cid}/{RESULT}")
        return rec

    def iteration(self, it: int, opening: list[Message], best: dict[str, Any] | None) -> dict:
        self.emit("iteration_started", iteration=it)
        messages = list(opening)
        if best is not None:
            checkpoints = self.store.read(f"{best['id']}/{CHECKPOINTS}")
            messages += [
                Message("assistant", self.store.path(f"{best['id']}/{RESPONSE}").read_text()),
                Message("user", self.prompts.render("feedback", **reflection(checkpoints))),
            ]
        prompt = Prompt(
            tuple(messages), "sample", it, self._evidence(it), key=f"iter_{it:02d}-sample"
        )
        completions = self._ask(prompt, self.config.samples)
        cands = [self._candidate(it, k, 0, c, None) for k, c in enumerate(completions)]
        self._validate(cands)
        for round_ in range(1, self.config.repair_rounds + 1):
            broken = [c for c in cands if c["status"] == "failed" and c["repair"] == round_ - 1]
            broken = [c for c in broken if c["stage"] != "model"]
            if not broken:
                break
            repaired = [self._repair(it, c, opening, round_) for c in broken]
            self._validate(repaired)
            cands += repaired
        self._train([c for c in cands if c["status"] == "valid"])
        trained = [self._load(c["id"]) for c in cands]
        trained = [c for c in trained if (c["result"] or {}).get("status") == "trained"]
        best_id = max(trained, key=lambda c: c["result"]["fitness"])["id"] if trained else None
        record = {
            "iteration": it,
            "candidates": [c["id"] for c in cands],
            "trained": len(trained),
            "best": best_id,
            "best_fitness": self._load(best_id)["result"]["fitness"] if best_id else None,
        }
        self.store.write(iteration_rel(it), record)
        self.emit("iteration_finished", **record)
        return record

    def _evidence(self, it: int) -> Evidence:
        scored = []
        for rec in self.store.candidates():
            res = rec.get("result") or {}
            if res.get("status") == "trained":
                cps = self.store.read(f"{rec['id']}/{CHECKPOINTS}") or []
                code = self.store.path(f"{rec['id']}/{REWARD}").read_text()
                scored.append(ScoredCode(code, res["fitness"], component_means(cps)))
        return Evidence(iteration=it, seeds=self.seeds, scored=tuple(scored))

    # ------------------------------------------------------------------ candidates
    def _candidate(
        self, it: int, index: int, repair: int, completion: Completion, parent: str | None
    ) -> dict[str, Any]:
        """Parse one answer into a candidate folder (or reuse the folder on resume)."""
        from eureka_lab.parsing import code_digest, parse_response
        from eureka_lab.policy import check_code

        cid = candidate_id(it, index, repair)
        existing = self.store.read(f"{cid}/{CANDIDATE}")
        if existing is not None:
            return existing
        rec: dict[str, Any] = {
            "id": cid,
            "iteration": it,
            "index": index,
            "repair": repair,
            "parent": parent,
            "status": "failed",
            "stage": None,
            "reason": None,
            "digest": None,
            "duplicate_of": None,
            "parse": None,
            "policy": [],
        }
        self.store.write_text(f"{cid}/{RESPONSE}", completion.text or "")
        if not completion.ok:
            rec.update(stage="model", reason=f"the model request failed: {completion.error}")
        else:
            parsed = parse_response(completion.text or "")
            rec["parse"] = parsed.reason
            if parsed.code is None:
                rec.update(stage="parse", reason=f"no usable code: {parsed.reason}")
            else:
                self.store.write_text(f"{cid}/{REWARD}", parsed.code)
                rec["digest"] = code_digest(parsed.code)
                violations = check_code(parsed.code)
                rec["policy"] = violations
                twin = self._twin(rec["digest"], cid)
                if violations:
                    more = f"; and {len(violations) - 10} more" if len(violations) > 10 else ""
                    rec.update(stage="policy", reason="; ".join(violations[:10]) + more)
                elif twin is not None:
                    rec.update(status="duplicate", duplicate_of=twin, reason=f"same code as {twin}")
                else:
                    rec.update(status="parsed")
        self.store.write(f"{cid}/{CANDIDATE}", rec)
        self.emit(
            "candidate", id=cid, status=rec["status"], stage=rec["stage"], reason=rec["reason"]
        )
        return rec

    def _twin(self, digest: str, cid: str) -> str | None:
        for rec in self.store.candidates():
            if rec["digest"] == digest and rec["id"] != cid and rec["status"] != "duplicate":
                return rec["id"]
        return None

    def _job(self, cid: str, mode: str, code: str | None, folder: str, seed: int) -> Job:
        spec = {
            "timesteps": self.timesteps,
            "seed": seed,
            "checkpoints": self.task.checkpoints,
            "eval_episodes": self.task.eval_episodes,
        }
        timeout = (
            self.config.validation_timeout
            if mode == "validate"
            else self.config.train_timeout or 300 + self.timesteps / 100
        )
        payload = job_payload(mode, self.task, code, spec, seed)
        return Job(cid, self.store.path(folder), payload, timeout)

    def _validate(self, cands: list[dict[str, Any]]) -> None:
        todo = [c for c in cands if c["status"] == "parsed"]
        jobs = [
            self._job(
                c["id"],
                "validate",
                self.store.path(f"{c['id']}/{REWARD}").read_text(),
                f"{c['id']}/{VALIDATION}",
                self.config.seed,
            )
            for c in todo
        ]
        results = self.executor.run(jobs)
        for c in todo:
            res = results[c["id"]]
            c["validation"] = res
            if res.get("ok"):
                c.update(status="valid", components=res["components"])
            else:
                c.update(
                    status="failed",
                    stage="validation",
                    reason=res["reason"],
                    traceback=res.get("traceback") or res.get("log_tail", ""),
                )
            self.store.write(f"{c['id']}/{CANDIDATE}", c)
            self.emit(
                "candidate", id=c["id"], status=c["status"], stage=c["stage"], reason=c["reason"]
            )

    def _repair(self, it: int, broken: dict[str, Any], opening: list[Message], round_: int) -> dict:
        cid = broken["id"]
        response = self.store.path(f"{cid}/{RESPONSE}").read_text()
        error = broken.get("traceback") or broken["reason"]
        stage = {"parse": "parsing", "policy": "the static safety check"}.get(
            broken["stage"], broken["stage"]
        )
        messages = [
            *opening,
            Message("assistant", response),
            Message("user", self.prompts.render("repair", stage=stage, traceback=error)),
        ]
        code_path = self.store.path(f"{cid}/{REWARD}")
        evidence = Evidence(
            iteration=it,
            seeds=self.seeds,
            scored=self._evidence(it).scored,
            failed_code=code_path.read_text() if code_path.exists() else None,
            error=error,
        )
        key = f"iter_{it:02d}-repair-{broken['index']:02d}-r{round_}"
        prompt = Prompt(tuple(messages), "repair", it, evidence, key=key)
        self.emit("repair_requested", id=cid, reason=broken["reason"])
        (completion,) = self._ask(prompt, 1)
        return self._candidate(it, broken["index"], round_, completion, cid)

    def _train(self, cands: list[dict[str, Any]]) -> None:
        todo = [c for c in cands if not self.store.exists(f"{c['id']}/{RESULT}")]
        jobs = [
            self._job(
                c["id"],
                "train",
                self.store.path(f"{c['id']}/{REWARD}").read_text(),
                c["id"],
                self.config.seed,
            )
            for c in todo
        ]
        for job in jobs:
            self.emit("training_started", id=job.key, timesteps=self.timesteps)
        self.executor.run(jobs, on_done=self._trained, on_tick=self._tick)

    def _trained(self, job: Job, result: dict[str, Any]) -> None:
        fields = {
            k: result.get(k)
            for k in ("status", "fitness", "success_rate", "reason", "seconds", "steps_per_second")
        }
        self.emit("candidate_trained", id=job.key, **fields)

    def _tick(self, running: list[Job]) -> None:
        if self.reporter is None:
            return
        progress = {}
        for job in running:
            cps = self.store.read(f"{job.workdir.relative_to(self.store.root)}/{CHECKPOINTS}")
            progress[job.key] = len(cps or [])
        self.reporter(
            {"event": "progress", "running": progress, "checkpoints": self.task.checkpoints}
        )

    # ------------------------------------------------------------------ final comparison
    def final(self, best: dict[str, Any]) -> dict[str, Any]:
        """Train best, human and sparse rewards with the same budget and seeds; compare."""
        codes = {
            "best": self.store.path(f"{best['id']}/{REWARD}").read_text(),
            "human": self.task.reward_source(self.task.human_reward),
            "sparse": self.task.reward_source(self.task.sparse_reward),
        }
        seeds = [self.config.seed + 1000 * j for j in range(self.config.final_seeds)]
        jobs = []
        for name, code in codes.items():
            recorded = self.store.path(f"{final_dir(name)}/{REWARD}")
            if code is not None and recorded.exists() and recorded.read_text() != code:
                # The best changed since an earlier comparison (a resumed run): redo it.
                for s in seeds:
                    self.store.path(f"{final_dir(name, s)}/{RESULT}").unlink(missing_ok=True)
            if code is not None:
                self.store.write_text(f"{final_dir(name)}/{REWARD}", code)
            for s in seeds:
                folder = final_dir(name, s)
                if not self.store.exists(f"{folder}/{RESULT}"):
                    jobs.append(self._job(folder, "train", code, folder, s))
        if jobs:
            self.emit("final_started", jobs=len(jobs), seeds=seeds)
            self.executor.run(jobs, on_done=self._trained, on_tick=self._tick)
        rows: dict[str, Any] = {}
        for name in codes:
            results = [self.store.read(f"{final_dir(name, s)}/{RESULT}") for s in seeds]
            ok = [r for r in results if r and r.get("status") == "trained"]
            rates = [r["success_rate"] for r in ok if r.get("success_rate") is not None]
            rows[name] = {
                "fitness": sum(r["fitness"] for r in ok) / len(ok) if ok else None,
                "success_rate": sum(rates) / len(rates) if rates else None,
                "per_seed": [r.get("fitness") if r else None for r in results],
                "failed": [r.get("reason") for r in results if r and r.get("status") != "trained"],
                "reward": "env" if codes[name] is None else final_dir(name),
            }
        b, h, s = (rows[k]["fitness"] for k in ("best", "human", "sparse"))
        score = None
        if None not in (b, h, s) and abs(h - s) > 1e-12:
            score = (b - s) / abs(h - s)
        summary = {
            "task": self.task.name,
            "best": best["id"],
            "best_search_fitness": best["result"]["fitness"],
            "seeds": seeds,
            "timesteps": self.timesteps,
            "final": rows,
            "normalized_score": score,
            "usage": asdict(self.store.usage()),
        }
        self.store.write(SUMMARY, summary)
        return summary
