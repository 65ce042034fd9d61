"""What comes back from jobs while they run, untrusted until checked here: from training
jobs, checkpoints (schema, increasing steps, the policy's arrays) and trainers' saved state;
from evaluation jobs, rollout videos. Only what passes is written to the run store; a
group's frame goes to the member it names."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from pydantic import ValidationError

from eureka_lab.core.bounds import MAX_ARTEFACT
from eureka_lab.core.files import looks_like_mp4
from eureka_lab.core.text import safe_text
from eureka_lab.executors.base import JobEvent
from eureka_lab.loop.journal import Journal
from eureka_lab.runs.records import Checkpoint, CheckpointStats


class Intake:
    """Receives the frames of the jobs running now."""

    def __init__(self, journal: Journal, checkpoints: int) -> None:
        self.journal = journal
        self.store = journal.store
        self.checkpoints = checkpoints
        """Checkpoints per training (for progress)."""
        self.live: dict[str, list[Checkpoint]] = {}
        """The checkpoints of each training running now, by key."""
        self.expected: dict[str, int] = {}
        """How many checkpoints each training running now will report, by key."""
        self.groups: dict[str, list[str]] = {}
        """Group jobs running now (their key: the members' keys in order)."""

    def training(self, event: JobEvent) -> None:
        """A frame from a training job: a checkpoint (validated; its policy kept; progress
        reported) or a resumable trainer's state. A group's frame goes to the member it
        names. A video is refused: it would show what the evaluator never rolled out."""
        if event.key in self.groups:
            member = event.data.get("member")
            keys = self.groups[event.key]
            if type(member) is not int or not 0 <= member < len(keys):
                self.journal.emit("checkpoint_refused", id=event.key, reason="no valid member")
                return
            data = {k: v for k, v in event.data.items() if k != "member"}
            event = replace(event, key=keys[member], data=data)
        if event.kind == "video":
            self.journal.emit("video_refused", id=event.key, reason="sent by a training job")
        elif event.key not in self.live:
            return
        elif event.kind == "state":
            state = checked_arrays(event.artefact)
            step = event.data.get("step")
            if state is not None and type(step) is int and step >= 0:
                self.store.save_training_state(event.key, step, state)
            else:
                self.journal.emit("state_refused", id=event.key)
        elif event.kind == "checkpoint":
            self._checkpoint(event)

    def evaluation(self, event: JobEvent) -> None:
        """A frame from an evaluation job (which never runs reward code): a rollout video,
        kept if it looks like an mp4 within the size limit."""
        if event.kind != "video" or event.key not in self.live:
            return
        data = event.artefact or b""
        if len(data) <= MAX_ARTEFACT and looks_like_mp4(data):
            self.store.save_video(event.key, data)
            self.journal.emit("video", id=event.key, bytes=len(data))
        else:
            self.journal.emit("video_refused", id=event.key, bytes=len(data))

    def _checkpoint(self, event: JobEvent) -> None:
        live = self.live[event.key]
        try:
            stats = CheckpointStats.model_validate(event.data)
        except ValidationError as e:
            self.journal.emit("checkpoint_refused", id=event.key, reason=safe_text(e, 500))
            return
        policy = checked_arrays(event.artefact)
        if policy is None or (live and stats.step <= live[-1].step):
            self.journal.emit("checkpoint_refused", id=event.key, reason="invalid policy or step")
            return
        self.store.save_policy(event.key, stats.step, policy)
        live.append(Checkpoint(**stats.model_dump()))
        self.store.save_checkpoints(event.key, live)
        self.journal.show(
            "progress",
            running={
                k: [len(v), max(len(v), self.expected.get(k, self.checkpoints)), v[-1].seconds]
                for k, v in self.live.items()
                if v
            },
            waiting=sum(1 for v in self.live.values() if not v),
        )


def checked_arrays(data: bytes | None) -> bytes | None:
    """Arrays (safetensors) from an untrusted process, re-written by us if they are plain,
    finite float arrays within the size limit (safetensors cannot carry code)."""
    from safetensors.numpy import load, save

    if data is None or len(data) > MAX_ARTEFACT:
        return None
    try:
        arrays = load(data)
    except Exception:
        return None
    if not arrays or len(arrays) > 1000:
        return None
    clean = {}
    for name, arr in arrays.items():
        if len(name) > 200 or arr.dtype.kind != "f" or not np.all(np.isfinite(arr)):
            return None
        clean[name] = np.ascontiguousarray(arr)
    return bytes(save(clean))
