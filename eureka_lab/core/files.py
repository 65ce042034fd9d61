"""Atomic file writes, and reads that stay inside a folder: readers see the old file or the
new one, whole, and never a file a link points to."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eureka_lab.core.errors import RunError

MiB = 1024 * 1024
MAX_RECORD = 16 * MiB
"""Largest JSON record or text file of a run read (a model's answers, a reward's code)."""


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
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno and e.filename is None:  # a write names none
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=jsonable) + "\n")


def open_inside(root: Path, rel: str, flags: int = os.O_RDONLY) -> int:
    """A descriptor of the regular file ``rel`` (``/``-separated) beneath the folder ``root``.

    A run folder may come from someone else: a file in it may be a symbolic link to one of
    yours, a folder on the way may be one, or the file a pipe that blocks its reader. Each
    folder is opened relative to the one before and no step follows a link, so nothing can
    be swapped between a check and the open, and the type is checked on the descriptor
    itself. Raises FileNotFoundError where the file is absent, and RunError naming the file
    and the problem where it is not a regular file inside ``root``."""
    where = root / rel
    parts = rel.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise RunError(f"{where} is not a path inside {root}")
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    into_folder = os.O_RDONLY | os.O_DIRECTORY | nofollow
    to_file = flags | nofollow | os.O_NONBLOCK  # a pipe must not block the open
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                inner = os.open(part, to_file if last else into_folder, 0o666, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EISDIR):
                    raise
                raise RunError(f"{where} {_not_regular(fd, part, last)}") from None
            os.close(fd)
            fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{where} {_not_regular(None, parts[-1], True)}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_regular(folder: int | None, name: str, last: bool) -> str:
    """Why an entry cannot be read as the file a run store wrote (for the message only)."""
    try:
        link = folder is not None and stat.S_ISLNK(os.lstat(name, dir_fd=folder).st_mode)
    except OSError:
        link = False
    what = "is a symbolic link" if link else "is not a regular file" if last else "is not a folder"
    step = "" if last else f" (at {name!r})"
    return f"{what}{step}; a run folder holds only regular files and folders, no links"


def read_inside(root: Path, rel: str, limit: int) -> bytes | None:
    """The bytes of the regular file ``rel`` beneath ``root`` (see :func:`open_inside`),
    None where it is absent."""
    try:
        fd = open_inside(root, rel)
    except FileNotFoundError:
        return None
    try:
        return read_bounded(fd, limit, root / rel)
    finally:
        os.close(fd)


def read_bounded(fd: int, limit: int, where: Path) -> bytes:
    """All of the open file ``fd``; RunError naming ``where`` if it is over ``limit`` bytes
    (a run folder from someone else may hold a file of any size)."""
    size = os.fstat(fd).st_size
    chunks, read = [], 0
    while size <= limit and read <= limit:
        chunk = os.pread(fd, limit + 1 - read, read)
        if not chunk:
            break
        chunks.append(chunk)
        read += len(chunk)
    if size > limit or read > limit:
        raise RunError(f"{where} is over {limit:,} bytes, more than a run writes there")
    return b"".join(chunks)


def append_line(fd: int, line: bytes) -> None:
    """Append ``line`` (ending in a newline) to ``fd`` (open to read and append) and sync
    it. A line torn by a writer killed mid-append is ended first, so that ours stays whole."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        line = b"\n" + line
    view = memoryview(line)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def parse_json(data: bytes) -> Any:
    """``data`` as JSON; ValueError saying why not."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"is not valid JSON ({e})") from None


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON file at ``path`` (not a link), ``default`` where it is absent."""
    data = read_inside(path.parent, path.name, MAX_RECORD)
    if data is None:
        return default
    try:
        return parse_json(data)
    except ValueError as e:
        raise RunError(f"{path} {e}; delete it to redo that step.") from None


def data_dir(name: str) -> Path:
    """Folder of shipped data (``envs`` or ``prompts``): in the wheel, else in the checkout."""
    package = Path(__file__).resolve().parents[1]  # eureka_lab/
    packaged = package / "_data" / name
    return packaged if packaged.is_dir() else package.parent / name


def looks_like_mp4(data: bytes) -> bool:
    """A cheap check that bytes are an mp4 (an ISO media file's ``ftyp`` box first): what an
    evaluation job sent as a video, or what a run folder holds as one."""
    return len(data) > 12 and data[4:8] == b"ftyp"
