"""A backend for people who only have a chat web page: a person carries the prompt over.

Each request is written to ``<run>/manual/<key>/prompt.md``; the backend then waits for
``answer_1.md`` ... ``answer_n.md`` in that folder (each non-empty and no longer growing).
In a terminal it also accepts answers pasted on stdin, each ended by a line ``EOF``.
"""

from __future__ import annotations

import os
import re
import select
import sys
import time
from pathlib import Path
from typing import IO

from eureka_lab.backends import BackendSettings
from eureka_lab.backends.base import Completion, Prompt, Usage
from eureka_lab.core.errors import BackendError
from eureka_lab.core.files import atomic_write

END_MARK = "EOF"


def render_prompt(prompt: Prompt, n: int, folder: Path) -> str:
    """The prompt as a Markdown page a person can read and copy from."""
    lines = [
        f"# Prompt {prompt.key or ''}".rstrip(),
        "",
        f"Paste the messages below into a chat, one after the other, and save {n} "
        f"answer{'s' if n != 1 else ''} (fresh chats, so they differ) as "
        + ", ".join(f"`answer_{i}.md`" for i in range(1, n + 1))
        + f" in `{folder}`.",
        "",
    ]
    for i, m in enumerate(prompt.messages, 1):
        fence = "````" if "```" in m.content else "```"
        lines += [f"## Message {i}: {m.role}", "", fence + "text", m.content, fence, ""]
    return "\n".join(lines)


class ManualBackend:
    """Writes each prompt to a file and waits for a person to save the answers."""

    name = "manual"
    poll_interval: float = 0.5

    def __init__(
        self, settings: BackendSettings, arg: str | None = None, *, stdin: IO[str] | None = None
    ) -> None:
        self.settings = settings
        self.root = Path(arg).expanduser().resolve() if arg else None
        self.stdin = stdin

    def _folder(self, prompt: Prompt) -> Path:
        root = self.root or (
            Path(self.settings.run_dir) / "manual" if self.settings.run_dir else None
        )
        if root is None:
            raise BackendError(
                "The manual backend needs a run directory to write prompts into "
                "(settings.run_dir), or use --backend manual:FOLDER."
            )
        key = prompt.key or f"iter_{prompt.iteration:02d}/{prompt.purpose}"
        parts = [
            re.sub(r"[^A-Za-z0-9_.-]+", "_", p) for p in key.split("/") if p not in ("", ".", "..")
        ]
        return root.joinpath(*parts)

    def complete(self, prompt: Prompt, n: int) -> list[Completion]:
        if n <= 0:
            return []
        folder = self._folder(prompt)
        prompt_file = folder / "prompt.md"
        atomic_write(prompt_file, render_prompt(prompt, n, folder))
        answers = [folder / f"answer_{i}.md" for i in range(1, n + 1)]
        stdin = self._interactive_stdin()
        print(
            f"\n[manual] The prompt is in {prompt_file}\n"
            f"[manual] Save {n} answer(s) in {folder} as "
            + ", ".join(p.name for p in answers)
            + "; waiting for them."
            + (
                f"\n[manual] Or paste each answer here and end it with a line {END_MARK}."
                if stdin is not None
                else ""
            ),
            file=sys.stderr,
            flush=True,
        )
        self._wait(answers, stdin)
        return [
            Completion(p.read_text(), Usage(), model="manual", meta={"file": str(p)})
            for p in answers
        ]

    def _interactive_stdin(self) -> int | None:
        """The file descriptor to read pasted answers from, or None for files only."""
        if self.stdin is not None:
            return self.stdin.fileno()
        if not self.settings.interactive or os.name == "nt":
            return None
        try:
            return sys.stdin.fileno() if sys.stdin.isatty() else None
        except (AttributeError, ValueError, OSError):
            return None

    def _wait(self, answers: list[Path], stdin: int | None) -> None:
        """Return once every answer exists, is non-empty and kept its size for one poll."""
        last: list[int] | None = None
        pending = b""
        pasted: list[str] = []
        while True:
            sizes = [_size(p) for p in answers]
            if (
                all(s > 0 for s in sizes)
                and sizes == last
                and all(p.read_text().strip() for p in answers)
            ):
                return
            last = sizes
            if stdin is None:
                time.sleep(self.poll_interval)
                continue
            ready, _, _ = select.select([stdin], [], [], self.poll_interval)
            if not ready:
                continue
            chunk = os.read(stdin, 65536)
            if not chunk:  # stdin closed: files only from now on
                stdin = None
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                if line.strip() != END_MARK:
                    pasted.append(line)
                    continue
                target = next((p for p in answers if _size(p) == 0), None)
                if target is None:
                    pasted = []
                    continue
                atomic_write(target, "\n".join(pasted) + "\n")
                print(f"[manual] Saved {target}", file=sys.stderr, flush=True)
                pasted = []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
