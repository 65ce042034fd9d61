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

A run folder may also come from someone else, so every read goes through one place
(:meth:`RunStore._load`): a regular file inside the folder, reached through no link, of a
bounded size, and of the right type (a record that validates, an mp4, safetensors).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from eureka_lab.core.bounds import MAX_ARTEFACT
from eureka_lab.core.errors import RunError, RunFolderWarning
from eureka_lab.core.files import (
    MAX_RECORD,
    append_line,
    atomic_write,
    jsonable,
    open_inside,
    parse_json,
    read_bounded,
    read_json,
    write_json,
)
from eureka_lab.runs.formats import (
    CHECKPOINT_LIST,
    as_mp4,
    as_rankings,
    as_safetensors,
    as_text,
    parsed,
    schema,
)
from eureka_lab.runs.records import (
    FORMAT_VERSION,
    Candidate,
    Checkpoint,
    Iteration,
    Ranking,
    RunSummary,
    TrainingResult,
)
from eureka_lab.runs.traffic import ModelTraffic

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

MAX_LOG = 256 * 1024**2
"""Largest append-only log read (events, rankings)."""

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")


def candidate_id(iteration: int, index: int, repair: int = 0) -> str:
    """The id of a candidate: its folder inside the run (``iter_01/cand_02_r1``)."""
    return f"iter_{iteration:02d}/cand_{index:02d}" + (f"_r{repair}" if repair else "")


def final_id(name: str, seed: int) -> str:
    """The id of one training of the closing comparison (``final/best/seed_1000``)."""
    return f"final/{name}/seed_{seed}"


def seed_id(cid: str, seed: int) -> str:
    """The id of a further training of candidate ``cid`` on another seed, as a race gives
    it (``iter_01/cand_02/seed_1``); its first training is ``cid`` itself."""
    return f"{cid}/seed_{seed}"


class RunStore(ModelTraffic):
    """A run directory. Create with :meth:`create`, reopen with :meth:`open`.

    A ``lenient`` store reads a run that may be someone else's (``show``, ``report``,
    ``load_run``): a bad file is one warning (:class:`RunFolderWarning`) and reads as
    absent, so the rest of the run still shows. Otherwise a bad file raises RunError."""

    def __init__(self, root: Path, lenient: bool = False) -> None:
        self.root = Path(root).resolve()
        self.lenient = lenient

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
    def open(cls, path: str | Path, lenient: bool = False) -> RunStore:
        """Open a run directory; refuse one written by a newer eureka-lab."""
        root = Path(path).expanduser().resolve()
        if not root.exists():
            raise RunError(f"{path} does not exist.")
        if not (root / CONFIG).is_file():
            raise RunError(f"{root} is not a run directory (no {CONFIG}).")
        store = cls(root, lenient)
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
        """The run's settings: nothing of a run reads without them, so a bad file raises."""
        config = parsed(self.root, CONFIG, parse_json, MAX_RECORD)
        if not isinstance(config, dict):
            raise RunError(f"{self.root / CONFIG} is missing or does not hold a run's settings.")
        return config

    @property
    def format_version(self) -> Any:
        """The run's format version (runs written before versions were recorded: 1)."""
        return self.config.get("format", 1)

    def save_config(self, config: dict[str, Any]) -> None:
        write_json(self.root / CONFIG, config)

    # ----------------------------------------------------------------- reading
    def _load(self, rel: str, parse: Callable[[bytes], T], limit: int = MAX_RECORD) -> T | None:
        """``parse`` of the run's file ``rel``, None where it is absent. Every read of the
        run comes here: see :func:`parsed` for what a good file is."""
        try:
            return parsed(self.root, rel, parse, limit)
        except RunError as e:
            if not self.lenient:
                raise
            warnings.warn(str(e), RunFolderWarning, stacklevel=1)
            return None

    def _read(self, rel: str, model: type[R]) -> R | None:
        return self._load(rel, schema(model.__name__, model.model_validate))

    def _write(self, rel: str, record: BaseModel) -> None:
        write_json(self.root / rel, record.model_dump(mode="json"))

    def context(self) -> str | None:
        return self._load(CONTEXT, as_text)

    def save_context(self, text: str) -> None:
        atomic_write(self.root / CONTEXT, text)

    def candidate(self, cid: str) -> Candidate | None:
        def in_its_folder(raw: Any) -> Candidate:
            cand = Candidate.model_validate(raw)
            if cand.id != cid:  # its id names the files read next
                raise ValueError(f"names candidate {cand.id!r}, not {cid!r}")
            return cand

        return self._load(f"{cid}/{CANDIDATE}", schema("Candidate", in_its_folder))

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

    def seeds(self, cid: str) -> list[int]:
        """The further seeds candidate ``cid`` was trained on (:func:`seed_id`), in order."""
        found = []
        for d in (self.root / cid).glob("seed_*"):
            number = d.name.removeprefix("seed_")
            if number.isdigit() and (d / RESULT).is_file():
                found.append(int(number))
        return sorted(found)

    def response(self, cid: str) -> str | None:
        return self._load(f"{cid}/{RESPONSE}", as_text)

    def save_response(self, cid: str, text: str) -> None:
        atomic_write(self.root / cid / RESPONSE, text)

    def reward_code(self, cid: str) -> str | None:
        """The reward code of a candidate or of a final-comparison training."""
        return self._load(f"{cid}/{REWARD}", as_text)

    def save_reward_code(self, cid: str, code: str) -> None:
        atomic_write(self.root / cid / REWARD, code)

    def checkpoints(self, cid: str) -> list[Checkpoint]:
        return self._load(f"{cid}/{CHECKPOINTS}", schema("Checkpoint", CHECKPOINT_LIST)) or []

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
        name = POLICY if step is None else f"{POLICIES}/step_{step:09d}.safetensors"
        return self._load(f"{cid}/{name}", as_safetensors, MAX_ARTEFACT)

    def policy_path(self, cid: str) -> Path | None:
        """Where the best policy of ``cid`` is, for users who load it: a safetensors file
        checked as :meth:`policy` checks it."""
        return self.root / cid / POLICY if self.policy(cid) is not None else None

    def save_training_state(self, cid: str, step: int, data: bytes) -> None:
        """A resumable trainer's state at ``step``, the end of a round (validated
        safetensors bytes). Named by its step: a kill after the state of a round is saved
        but before its result leaves the state the result's step needs in place."""
        atomic_write(self.root / cid / TRAINING_STATE.format(step=step), data)

    def training_state(self, cid: str, step: int) -> bytes | None:
        """The state saved at ``step`` (None: none was)."""
        return self._load(f"{cid}/{TRAINING_STATE.format(step=step)}", as_safetensors, MAX_ARTEFACT)

    def save_best_policy(self, cid: str, data: bytes) -> None:
        atomic_write(self.root / cid / POLICY, data)

    def save_video(self, cid: str, data: bytes) -> None:
        """A rollout video of ``cid``'s best policy (H.264 mp4), written by the evaluator's
        parent."""
        atomic_write(self.root / cid / VIDEO, data)

    def video(self, cid: str) -> bytes | None:
        """``cid``'s rollout video (mp4 bytes), if one was recorded."""
        return self._load(f"{cid}/{VIDEO}", as_mp4, MAX_ARTEFACT)

    def video_path(self, cid: str) -> Path | None:
        """Where ``cid``'s rollout video is, if one was recorded: an mp4 checked as
        :meth:`video` checks it, for a page to link."""
        return self.root / cid / VIDEO if self.video(cid) is not None else None

    def save_log(self, cid: str, text: str) -> None:
        """The tail of a job's output (already bounded and escaped by the caller)."""
        atomic_write(self.root / cid / LOG, text)

    def iteration(self, it: int) -> Iteration | None:
        return self._read(f"iter_{it:02d}/{ITERATION}", Iteration)

    def save_iteration(self, record: Iteration) -> None:
        self._write(f"iter_{record.iteration:02d}/{ITERATION}", record)

    def iterations(self) -> list[int]:
        """Iterations that have started (a folder exists), in order."""
        folders = (p for p in self.root.glob("iter_*") if re.fullmatch(r"iter_[0-9]+", p.name))
        return sorted(int(p.name[5:]) for p in folders if p.is_dir())

    def append_ranking(self, ranking: Ranking) -> Ranking:
        """Record one preference query (JSON lines, appended and synced), unless its question
        was answered already; return the ranking on record.

        Answers may race: two posts of the page, or the page of a run and that of
        ``eureka-lab rank`` beside it. The file stays locked from reading to appending, so
        one answer per question is kept, on one whole line."""
        fd = open_inside(self.root, RANKINGS, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released with the descriptor
            recorded = as_rankings(read_bounded(fd, MAX_LOG, self.root / RANKINGS))
            earlier = next((r for r in recorded if r.query == ranking.query), None)
            if earlier is not None:
                return earlier
            append_line(fd, ranking.model_dump_json().encode() + b"\n")
            return ranking
        finally:
            os.close(fd)

    def rankings(self) -> list[Ranking]:
        """Every preference query of the run, in order (a torn last line is skipped)."""
        return self._load(RANKINGS, as_rankings, MAX_LOG) or []

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
        fd = open_inside(self.root, EVENTS, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        try:
            append_line(fd, json.dumps(record, default=jsonable).encode() + b"\n")
        except OSError as e:
            if not e.errno or e.filename is not None:
                raise
            raise OSError(e.errno, e.strerror, str(self.root / EVENTS)) from e  # names none
        finally:
            os.close(fd)
        return record

    def events(self) -> Iterator[dict[str, Any]]:
        for line in (self._load(EVENTS, bytes, MAX_LOG) or b"").splitlines():
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(event, dict):
                yield event
