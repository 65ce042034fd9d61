"""The run store: the only code that knows the file names and formats of a run.

Layout of ``runs/<run-id>/``::

    config.json              resolved task and settings, with the format version
    context.md               what the model was shown about the environment
    events.jsonl             append-only event log (one JSON object a line)
    llm/<key>.json           each model request: messages sent, completions received, usage
    iter_NN/cand_KK/         one candidate: response.md, reward.py, candidate.json,
                             checkpoints.json, result.json, policy.safetensors (best
                             checkpoint), policies/step_N.safetensors, worker.log
    iter_NN/iteration.json   a finished iteration and its ranking
    final/<name>/seed_S/     the closing comparison: best, human, sparse
    summary.json             the result of the run

Records are the typed models of :mod:`eureka_lab.runs.records`, validated on the way in and out.
Every file is written atomically (temporary file, fsync, rename) by the orchestrator; no
process that runs candidate code writes here. A run killed at any moment leaves a directory
that ``show``, ``load_run`` and ``resume`` can read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from eureka_lab.core.errors import RunError
from eureka_lab.core.files import atomic_write, jsonable, read_json, write_json
from eureka_lab.prompt.conversation import Completion, Message, Prompt, Usage
from eureka_lab.runs.records import (
    FORMAT_VERSION,
    Candidate,
    Checkpoint,
    Iteration,
    Ranking,
    RunSummary,
    TrainingResult,
)

__all__ = ["FORMAT_VERSION", "RunStore", "atomic_write", "read_json", "write_json"]

CONFIG = "config.json"
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
CONTEXT = "context.md"
CANDIDATE = "candidate.json"
RESULT = "result.json"
CHECKPOINTS = "checkpoints.json"
POLICY = "policy.safetensors"
POLICIES = "policies"
TRAINING_STATE = "training_state_{step:09d}.safetensors"
TRAINING_STATES = "training_state_*.safetensors"
REWARD = "reward.py"
RESPONSE = "response.md"
LOG = "worker.log"
VIDEO = "rollout.mp4"
ITERATION = "iteration.json"
RANKINGS = "rankings.jsonl"

R = TypeVar("R", bound=BaseModel)


def candidate_id(iteration: int, index: int, repair: int = 0) -> str:
    """The id of a candidate: its folder inside the run (``iter_01/cand_02_r1``)."""
    return f"iter_{iteration:02d}/cand_{index:02d}" + (f"_r{repair}" if repair else "")


def final_id(name: str, seed: int) -> str:
    """The id of one training of the closing comparison (``final/best/seed_1000``)."""
    return f"final/{name}/seed_{seed}"


class RunStore:
    """A run directory. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._events_checked = False

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, runs_dir: str | Path, name: str, config: dict[str, Any]) -> RunStore:
        runs_dir = Path(runs_dir).expanduser().resolve()
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            root = runs_dir / f"{stamp}-{name}"
            suffix = 1
            while root.exists():
                suffix += 1
                root = runs_dir / f"{stamp}-{name}-{suffix}"
            root.mkdir()
        except OSError as e:
            raise RunError(
                f"Cannot create a run in {runs_dir}: {e.strerror}. Pick a writable folder "
                "with --runs-dir (runs_dir=...)."
            ) from None
        store = cls(root)
        store.save_config({"format": FORMAT_VERSION, **config})
        return store

    @classmethod
    def open(cls, path: str | Path) -> RunStore:
        """Open a run directory; refuse one written by a newer eureka-lab."""
        root = Path(path).expanduser().resolve()
        if not (root / CONFIG).is_file():
            raise RunError(f"{root} is not a run directory (no {CONFIG}).")
        store = cls(root)
        version = store.format_version
        if version != FORMAT_VERSION:
            fix = (
                "Upgrade eureka-lab (pip install -U eureka-lab) to read it."
                if isinstance(version, int) and version > FORMAT_VERSION
                else "Its scores were measured inside the process that ran the reward code, "
                "so they cannot be trusted: run the task again (eureka-lab 0.1 can still show "
                "it)."
            )
            raise RunError(
                f"{root} is in run format {version!r}; this eureka-lab reads format "
                f"{FORMAT_VERSION}. {fix}"
            )
        return store

    def remove_temporary_files(self) -> list[str]:
        """Delete the temporary files of writes a kill cut short (``atomic_write`` leaves
        ``.NAME.XXXX.tmp`` beside its target when the process dies before the rename);
        their targets still hold the old content, or none. Call it only where no other
        process writes to this run: when a run starts or resumes. Returns what it deleted."""
        removed = []
        for path in self.root.rglob(".*.tmp"):
            if path.is_file():
                path.unlink()
                removed.append(path.relative_to(self.root).as_posix())
        return removed

    @property
    def config(self) -> dict[str, Any]:
        return read_json(self.root / CONFIG)

    @property
    def format_version(self) -> Any:
        """The run's format version (runs written before versions were recorded: 1)."""
        return self.config.get("format", 1)

    def save_config(self, config: dict[str, Any]) -> None:
        write_json(self.root / CONFIG, config)

    # ----------------------------------------------------------------- typed records
    def _read(self, rel: str, model: type[R]) -> R | None:
        raw = read_json(self.root / rel)
        if raw is None:
            return None
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            raise RunError(
                f"{self.root / rel} does not hold a valid {model.__name__} record "
                f"({e.error_count()} problems, first: {e.errors()[0]['msg']}); delete it to "
                "redo that step."
            ) from None

    def _write(self, rel: str, record: BaseModel) -> None:
        write_json(self.root / rel, record.model_dump(mode="json"))

    def context(self) -> str | None:
        path = self.root / CONTEXT
        return path.read_text() if path.exists() else None

    def save_context(self, text: str) -> None:
        atomic_write(self.root / CONTEXT, text)

    def candidate(self, cid: str) -> Candidate | None:
        return self._read(f"{cid}/{CANDIDATE}", Candidate)

    def save_candidate(self, cand: Candidate) -> None:
        self._write(f"{cand.id}/{CANDIDATE}", cand)

    def candidates(self, iteration: int | None = None) -> list[Candidate]:
        """Every candidate of the run (or of one iteration), in order."""
        pattern = f"iter_{iteration:02d}/cand_*" if iteration is not None else "iter_*/cand_*"
        out = []
        for d in sorted(self.root.glob(pattern)):
            cand = self.candidate(d.relative_to(self.root).as_posix())
            if cand is not None:
                out.append(cand)
        return out

    def response(self, cid: str) -> str | None:
        path = self.root / cid / RESPONSE
        return path.read_text() if path.exists() else None

    def save_response(self, cid: str, text: str) -> None:
        atomic_write(self.root / cid / RESPONSE, text)

    def reward_code(self, cid: str) -> str | None:
        """The reward code of a candidate or of a final-comparison training."""
        path = self.root / cid / REWARD
        return path.read_text() if path.exists() else None

    def save_reward_code(self, cid: str, code: str) -> None:
        atomic_write(self.root / cid / REWARD, code)

    def checkpoints(self, cid: str) -> list[Checkpoint]:
        raw = read_json(self.root / cid / CHECKPOINTS, [])
        try:
            return [Checkpoint.model_validate(c) for c in raw]
        except ValidationError as e:
            raise RunError(f"{self.root / cid / CHECKPOINTS} is not valid: {e}") from None

    def save_checkpoints(self, cid: str, checkpoints: list[Checkpoint]) -> None:
        write_json(self.root / cid / CHECKPOINTS, [c.model_dump(mode="json") for c in checkpoints])

    def result(self, cid: str) -> TrainingResult | None:
        return self._read(f"{cid}/{RESULT}", TrainingResult)

    def save_result(self, cid: str, result: TrainingResult) -> None:
        self._write(f"{cid}/{RESULT}", result)

    def clear_training(self, cid: str, keep_result: bool = False) -> None:
        """Forget a training (its checkpoints, policies and states), so it is done again.
        ``keep_result``: a round of successive halving that starts again keeps the last
        round's result and best policy until the new round's replace them, so that a kill
        in between loses neither the round nor what it spent."""
        names = (CHECKPOINTS,) if keep_result else (RESULT, CHECKPOINTS, POLICY)
        for name in names:
            (self.root / cid / name).unlink(missing_ok=True)
        for path in (self.root / cid).glob(TRAINING_STATES):
            path.unlink()
        folder = self.root / cid / POLICIES
        if folder.is_dir():
            for p in folder.iterdir():
                p.unlink()

    def save_policy(self, cid: str, step: int, data: bytes) -> None:
        """A checkpoint's policy, as safetensors bytes already validated by the caller."""
        atomic_write(self.root / cid / POLICIES / f"step_{step:09d}.safetensors", data)

    def policy(self, cid: str, step: int | None = None) -> bytes | None:
        """A checkpoint's policy (safetensors bytes); the best one when ``step`` is None."""
        path = (
            self.root / cid / POLICY
            if step is None
            else self.root / cid / POLICIES / f"step_{step:09d}.safetensors"
        )
        return path.read_bytes() if path.exists() else None

    def policy_path(self, cid: str) -> Path | None:
        """Where the best policy of ``cid`` is, for users who load it (safetensors)."""
        path = self.root / cid / POLICY
        return path if path.exists() else None

    def save_training_state(self, cid: str, step: int, data: bytes) -> None:
        """A resumable trainer's state at ``step``, the end of a round (validated
        safetensors bytes). Named by its step: a kill after the state of a round is saved
        but before its result leaves the state the result's step needs in place."""
        atomic_write(self.root / cid / TRAINING_STATE.format(step=step), data)

    def training_state(self, cid: str, step: int) -> bytes | None:
        """The state saved at ``step`` (None: none was)."""
        path = self.root / cid / TRAINING_STATE.format(step=step)
        return path.read_bytes() if path.exists() else None

    def save_best_policy(self, cid: str, data: bytes) -> None:
        atomic_write(self.root / cid / POLICY, data)

    def save_video(self, cid: str, data: bytes) -> None:
        """A rollout video of ``cid``'s best policy (H.264 mp4), written by the evaluator's
        parent."""
        atomic_write(self.root / cid / VIDEO, data)

    def video_path(self, cid: str) -> Path | None:
        """Where ``cid``'s rollout video is, if one was recorded."""
        path = self.root / cid / VIDEO
        return path if path.exists() else None

    def save_log(self, cid: str, text: str) -> None:
        """The tail of a job's output (already bounded and escaped by the caller)."""
        atomic_write(self.root / cid / LOG, text)

    def iteration(self, it: int) -> Iteration | None:
        return self._read(f"iter_{it:02d}/{ITERATION}", Iteration)

    def save_iteration(self, record: Iteration) -> None:
        self._write(f"iter_{record.iteration:02d}/{ITERATION}", record)

    def iterations(self) -> list[int]:
        """Iterations that have started (a folder exists), in order."""
        return sorted(int(p.name[5:]) for p in self.root.glob("iter_*") if p.is_dir())

    def append_ranking(self, ranking: Ranking) -> None:
        """Record one preference query (JSON lines, appended and synced)."""
        with open(self.root / RANKINGS, "a") as f:
            f.write(ranking.model_dump_json() + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rankings(self) -> list[Ranking]:
        """Every preference query of the run, in order (a torn last line is skipped)."""
        try:
            lines = (self.root / RANKINGS).read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(Ranking.model_validate_json(line))
            except ValidationError:
                continue
        return out

    def summary(self) -> RunSummary | None:
        return self._read(SUMMARY, RunSummary)

    def save_summary(self, summary: RunSummary) -> None:
        self._write(SUMMARY, summary)

    def manual_dir(self) -> Path:
        """Where the manual backend writes prompts and reads answers."""
        return self.root / "manual"

    # ----------------------------------------------------------------- events
    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event to the log (a torn last line is skipped by readers)."""
        record = {"time": round(time.time(), 3), "event": kind, **fields}
        line = json.dumps(record, default=jsonable) + "\n"
        path = self.root / EVENTS
        if not self._events_checked:
            # A run killed mid-append leaves a torn last line: start ours on a fresh one.
            self._events_checked = True
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line
        try:
            with open(path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            if not e.errno or e.filename is not None:
                raise
            raise OSError(e.errno, e.strerror, str(path)) from e  # a failed write names none
        return record

    def events(self) -> Iterator[dict[str, Any]]:
        try:
            lines = (self.root / EVENTS).read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue

    # ----------------------------------------------------------------- model traffic
    def llm_rel(self, key: str) -> str:
        return f"llm/{key.replace('/', '-')}.json"

    def save_request(
        self,
        prompt: Prompt,
        n: int,
        completions: list[Completion],
        backend: str,
        failed: bool = False,
    ) -> None:
        """Record a request. A ``failed`` one (no usable answer) is kept for the record under
        another name, so that resuming asks again."""
        rel = self.llm_rel(prompt.key)
        if failed:
            rel = rel.removesuffix(".json") + f".failed-{time.time_ns()}.json"
        write_json(
            self.root / rel,
            {
                "key": prompt.key,
                "purpose": prompt.purpose,
                "iteration": prompt.iteration,
                "n": n,
                "backend": backend,
                "messages": [m.to_dict() for m in prompt.messages],
                "completions": [completion_to_dict(c) for c in completions],
            },
        )

    def load_request(self, key: str) -> list[Completion] | None:
        record = read_json(self.root / self.llm_rel(key))
        if record is None:
            return None
        return [completion_from_dict(c) for c in record["completions"]]

    def request(self, key: str) -> dict[str, Any] | None:
        """One recorded request: messages sent, completions received (see save_request)."""
        return read_json(self.root / self.llm_rel(key))

    def requests(self, include_failed: bool = False) -> list[dict[str, Any]]:
        """Recorded requests; those that got no usable answer only with include_failed."""
        folder = self.root / "llm"
        if not folder.is_dir():
            return []
        paths = sorted(folder.glob("*.json"))
        return [read_json(p) for p in paths if include_failed or ".failed-" not in p.name]

    def usage(self) -> Usage:
        """Tokens and cost of every request of the run, failed ones included."""
        total = Usage()
        for record in self.requests(include_failed=True):
            for c in record["completions"]:
                total = total + Usage(**c.get("usage", {}))
        return total


def completion_to_dict(c: Completion) -> dict[str, Any]:
    return {
        "text": c.text,
        "error": c.error,
        "model": c.model,
        "usage": asdict(c.usage),
        "meta": c.meta,
    }


def completion_from_dict(d: dict[str, Any]) -> Completion:
    return Completion(
        text=d.get("text"),
        error=d.get("error"),
        model=d.get("model", ""),
        usage=Usage(**d.get("usage", {})),
        meta=d.get("meta", {}),
    )


def messages_from_dicts(items: list[dict[str, str]]) -> tuple[Message, ...]:
    return tuple(Message(m["role"], m["content"]) for m in items)  # type: ignore[arg-type]  # roles as stored, shown unchecked
