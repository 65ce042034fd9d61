"""The run store: the only code that knows the file names and formats of a run.

Layout of ``runs/<run-id>/``::

    config.json              resolved task and settings
    events.jsonl             append-only event log (one JSON object a line)
    llm/<key>.json           each model request: messages sent, completions received, usage
    iter_NN/cand_KK/         one candidate: response.md, reward.py, candidate.json,
                             checkpoints.json, result.json, policy.zip
    final/<name>/            the closing comparison: best, human, sparse
    summary.json             the result of the run

Every file is written atomically (temporary file, fsync, rename), so a run killed at any
moment leaves a directory that ``show`` and ``resume`` can read.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eureka_lab.backends.base import Completion, Message, Prompt, Usage
from eureka_lab.errors import RunError

CONFIG = "config.json"
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
CONTEXT = "context.md"
VALIDATION = "validation"
CANDIDATE = "candidate.json"
RESULT = "result.json"
CHECKPOINTS = "checkpoints.json"
POLICY = "policy.zip"
REWARD = "reward.py"
RESPONSE = "response.md"
JOB = "job.json"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e}); delete it to redo that step.") from None


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def iteration_rel(iteration: int) -> str:
    """The record of a finished iteration."""
    return f"iter_{iteration:02d}/iteration.json"


def final_dir(name: str, seed: int | None = None) -> str:
    """Folder of the closing comparison's ``name`` reward (best, human, sparse)."""
    return f"final/{name}" + (f"/seed_{seed}" if seed is not None else "")


def candidate_id(iteration: int, index: int, repair: int = 0) -> str:
    return f"iter_{iteration:02d}/cand_{index:02d}" + (f"_r{repair}" if repair else "")


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
                "with --runs-dir."
            ) from None
        store = cls(root)
        store.write(CONFIG, config)
        return store

    @classmethod
    def open(cls, path: str | Path) -> RunStore:
        root = Path(path).expanduser().resolve()
        if not (root / CONFIG).is_file():
            raise RunError(f"{root} is not a run directory (no {CONFIG}).")
        return cls(root)

    @property
    def config(self) -> dict[str, Any]:
        return self.read(CONFIG)

    # ----------------------------------------------------------------- generic
    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, obj: Any) -> None:
        write_json(self.root / rel, obj)

    def write_text(self, rel: str, text: str) -> None:
        atomic_write(self.root / rel, text)

    def read(self, rel: str, default: Any = None) -> Any:
        return read_json(self.root / rel, default)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    # ----------------------------------------------------------------- events
    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event to the log (a torn last line is skipped by readers)."""
        record = {"time": round(time.time(), 3), "event": kind, **fields}
        line = json.dumps(record, default=_jsonable) + "\n"
        path = self.root / EVENTS
        if not self._events_checked:
            # A run killed mid-append leaves a torn last line: start ours on a fresh one.
            self._events_checked = True
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as f:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        line = "\n" + line
        with open(path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
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
        self.write(
            rel,
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
        record = self.read(self.llm_rel(key))
        if record is None:
            return None
        return [completion_from_dict(c) for c in record["completions"]]

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

    # ----------------------------------------------------------------- candidates
    def candidates(self, iteration: int | None = None) -> list[dict[str, Any]]:
        """Every candidate record (candidate.json merged with result.json), in order."""
        pattern = f"iter_{iteration:02d}/cand_*" if iteration is not None else "iter_*/cand_*"
        out = []
        for d in sorted(self.root.glob(pattern)):
            rec = read_json(d / CANDIDATE)
            if rec is None:
                continue
            rec["result"] = read_json(d / RESULT)
            out.append(rec)
        return out

    def iterations(self) -> list[int]:
        return sorted(int(p.name[5:]) for p in self.root.glob("iter_*") if p.is_dir())


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
    return tuple(Message(m["role"], m["content"]) for m in items)  # type: ignore[arg-type]
