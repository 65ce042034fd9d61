"""The ``eureka-lab`` command, killed with SIGKILL at one chosen moment (a test helper).

    python tests/support/killpoints.py MOMENT run TASK --runs-dir DIR ...

MOMENT is a JSON object naming where the process kills itself (``{}``: nowhere):

- ``{"write": GLOB, "nth": N}``: in the middle of the Nth atomic write of a file whose path
  matches GLOB (``fnmatch``): half the bytes are in the temporary file, the target is
  untouched, as when the kernel stops a process between two ``write`` calls.
- ``{"event": KIND, "nth": N}``: in the middle of appending the Nth ``KIND`` event to the
  event log: half the line is on disk.
- ``{"after": KIND, "nth": N}``: right after the Nth ``KIND`` event is on disk.
- ``{"trained": N}``: when the Nth batch of trainings has returned (checkpoints and policies
  on disk), before its evaluation.
- ``{"ask": KEY}``: while the model is being asked the request ``KEY``.

It is a real SIGKILL of the orchestrator: nothing it would do on the way out runs. Right
before it, the process writes its descendants (pid and start time, one a line) to the file
``$KILLPOINT_PIDS``, so that a test can check that no job outlives it. The test doubles of
``support/doubles.py`` are registered, so a task may use the ``growing`` trainer and ``--executor
inline``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> list[tuple[int, int]]:
    """Every process below ``root`` (pid, start time), children before grandchildren."""
    parent: dict[int, int] = {}
    start: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(entry)) is not None:
            parent[int(entry)], start[int(entry)] = st
    out, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        out += [(pid, start[pid]) for pid in children]
        frontier = children
    return out


def alive(processes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Those of ``processes`` still running (the same pid with the same start time); a
    zombie waiting for its parent to read its status counts as gone."""
    out = []
    for pid, started in processes:
        st = _stat(str(pid))
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] if st else ""
        if st is not None and st[1] == started and state != "Z":
            out.append((pid, started))
    return out


def die() -> NoReturn:
    where = os.environ.get("KILLPOINT_PIDS")
    if where:
        lines = [f"{pid} {started}" for pid, started in descendants(os.getpid())]
        Path(where).write_text("".join(line + "\n" for line in lines))
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached
    raise SystemExit(137)


def install(moment: dict[str, Any]) -> None:
    """Patch the one place ``moment`` names, so that the process dies there."""
    from eureka_lab.core import files
    from eureka_lab.loop.training import Trainings
    from eureka_lab.runs import store

    nth = int(moment.get("nth", 1))
    seen = [0]

    def count() -> bool:
        seen[0] += 1
        return seen[0] == nth

    if "write" in moment:
        real_write = files.atomic_write

        def write(path: Path, data: str | bytes) -> None:
            if fnmatch.fnmatch(str(path), moment["write"]) and count():
                raw = data.encode() if isinstance(data, str) else data
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, _ = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                os.write(fd, raw[: len(raw) // 2])
                die()
            real_write(path, data)

        files.atomic_write = write  # write_json's
        store.atomic_write = write  # the store's own
    elif "event" in moment or "after" in moment:
        real_event = store.RunStore.event
        kind = moment.get("event") or moment["after"]

        def event(self: store.RunStore, what: str, **fields: Any) -> dict[str, Any]:
            if what == kind and count():
                if "event" in moment:
                    line = json.dumps({"time": time.time(), "event": what, **fields}, default=str)
                    with open(self.root / store.EVENTS, "a") as f:
                        f.write(line[: len(line) // 2])
                    die()
                real_event(self, what, **fields)
                die()
            return real_event(self, what, **fields)

        store.RunStore.event = event  # type: ignore[method-assign]
    elif "trained" in moment:
        real_trainings = Trainings._run_trainings

        def trainings(self: Trainings, jobs: Any) -> Any:
            out = real_trainings(self, jobs)
            seen[0] += 1
            if seen[0] == moment["trained"]:
                die()
            return out

        Trainings._run_trainings = trainings  # type: ignore[method-assign]
    elif "ask" in moment:
        from eureka_lab.backends.offline import OfflineBackend

        real_complete = OfflineBackend.complete

        def complete(self: OfflineBackend, prompt: Any, n: int) -> Any:
            answers = real_complete(self, prompt, n)
            if prompt.key == moment["ask"]:
                die()
            return answers

        OfflineBackend.complete = complete  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    from eureka_lab.cli import main as cli

    from support.doubles import register

    register()
    install(json.loads(argv[0]))
    return cli(argv[1:])


if __name__ == "__main__":
    # Run by path, Python put this folder first on sys.path: put the tests' folder there
    # instead, so that the helpers import as ``support.*``, as they do in the tests.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    sys.exit(main(sys.argv[1:]))
