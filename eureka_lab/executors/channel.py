"""The one way data leaves a job process: framed messages on a pipe, never pickles.

The child writes frames with :class:`Channel`; the parent reads them with
:func:`read_frames`, which trusts nothing: every header is bounded JSON (a dict with a
``kind``), every attached artefact is bounded bytes, and the number of frames and the total
size are capped. The parent validates each frame's data against a schema before using it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eureka_lab.core.bounds import MAX_ARTEFACT, MAX_FRAMES, MAX_HEADER, MAX_TOTAL


class ProtocolError(Exception):
    """A job process sent something outside the protocol (too big, malformed)."""


@dataclass(frozen=True)
class Frame:
    kind: str
    data: dict[str, Any]
    artefact: bytes | None = None


class Channel:
    """The child's end: ``send(kind, data, artefact)``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def send(self, kind: str, data: dict[str, Any], artefact: bytes | None = None) -> None:
        header = {
            "kind": kind,
            "data": data,
            "artefact": None if artefact is None else len(artefact),
        }
        self.conn.send_bytes(json.dumps(header, allow_nan=False).encode())
        if artefact is not None:
            self.conn.send_bytes(artefact)


def read_frames(conn: Any) -> Iterator[Frame]:
    """Frames from the parent's end until the child closes it. Raises ProtocolError on
    anything outside the protocol (the caller then kills the job)."""
    total = 0
    for _ in range(MAX_FRAMES):
        try:
            raw = conn.recv_bytes(MAX_HEADER)
        except EOFError:
            return
        except OSError as e:  # recv_bytes: "bad message length" past the maximum
            raise ProtocolError(f"a frame header over {MAX_HEADER} bytes ({e})") from None
        total += len(raw)
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError) as e:
            raise ProtocolError(f"a frame header is not valid JSON ({type(e).__name__})") from None
        size = header.get("artefact") if isinstance(header, dict) else None
        if not (
            isinstance(header, dict)
            and isinstance(header.get("kind"), str)
            and isinstance(header.get("data"), dict)
            and (size is None or (type(size) is int and 0 <= size <= MAX_ARTEFACT))
        ):
            raise ProtocolError("a frame header is not {kind: str, data: dict, artefact: int}")
        artefact = None
        if size is not None:
            try:
                artefact = conn.recv_bytes(MAX_ARTEFACT)
            except EOFError:
                raise ProtocolError("the job closed the pipe in the middle of a frame") from None
            except OSError as e:
                raise ProtocolError(f"an artefact over {MAX_ARTEFACT} bytes ({e})") from None
            if len(artefact) != size:
                raise ProtocolError(f"an artefact of {len(artefact)} bytes announced as {size}")
            total += len(artefact)
        if total > MAX_TOTAL:
            raise ProtocolError(f"the job sent over {MAX_TOTAL} bytes")
        yield Frame(header["kind"][:64], header["data"], artefact)
    raise ProtocolError(f"the job sent over {MAX_FRAMES} frames")
