"""The second confinement layer, Landlock (Linux 5.13+, unprivileged): the filesystem
readable only beneath the given paths (less the hidden ones), writable nowhere; where the
kernel knows them (ABI 4 and 6), TCP bind and connect, abstract unix sockets and signals to
processes outside the job refused too."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Sequence

from eureka_lab.isolation.kernel import error, load_libc

# Landlock: the three system calls have the same numbers on every architecture.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE = 1 << 0
FS_READ_FILE = 1 << 2
FS_WRITE_FILE = 1 << 1
FS_READ_DIR = 1 << 3
FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int | str:
    """The Landlock ABI version of the running kernel, or why there is none."""
    if not sys.platform.startswith("linux"):
        return f"Landlock is a Linux feature; this is {sys.platform}"
    libc = load_libc()
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))  # fmt: skip
    if abi < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return f"the kernel ({os.uname().release}) has no Landlock (Linux 5.13 or later)"
        if err == errno.EOPNOTSUPP:
            return "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)"
        return error("landlock_create_ruleset(VERSION)")
    return int(abi)


def read_rules(read_paths: Sequence[str], hidden: Sequence[str] = ()) -> list[tuple[str, bool]]:
    """Landlock's read rules for ``read_paths`` less everything beneath ``hidden``:
    ``(path, whole)`` pairs, where ``whole`` grants reading the file or the whole folder
    beneath it, and otherwise only listing that folder.

    Landlock only adds rights, so a readable folder holding a hidden one is granted piece
    by piece: the folder's listing, then each entry beside the hidden path, recursively
    along the way down to it (a few hundred rules at most: one per entry of each folder on
    the way). Paths are compared resolved."""
    hide = {os.path.realpath(h) for h in hidden}
    rules: list[tuple[str, bool]] = []

    def grant(path: str) -> None:
        real = os.path.realpath(path)
        if real in hide:
            return
        inside = [h for h in hide if h.startswith(real.rstrip("/") + "/")]
        if not inside or not os.path.isdir(real):
            rules.append((real, True))
            return
        rules.append((real, False))
        try:
            names = sorted(os.listdir(real))
        except OSError:
            return
        for name in names:
            grant(os.path.join(real, name))

    for path in read_paths:
        if os.path.lexists(path):
            grant(path)
    return rules


def restrict_files(
    libc: ctypes.CDLL,
    read_paths: Sequence[str],
    devices: Sequence[str] = (),
    hidden: Sequence[str] = (),
) -> bool | str:
    abi = landlock_abi()
    if isinstance(abi, str):
        return abi
    fs = FS_ABI1
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    if abi >= 5:
        fs |= FS_IOCTL_DEV
    attr = _RulesetAttr(
        fs,
        NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                           ctypes.c_size_t(size), ctypes.c_uint32(0))  # fmt: skip
    if ruleset < 0:
        return error("landlock_create_ruleset")
    device_access = FS_READ_FILE | FS_WRITE_FILE | (FS_IOCTL_DEV if abi >= 5 else 0)
    rules: list[tuple[str, int | None]] = [
        (path, None if whole else FS_READ_DIR) for path, whole in read_rules(read_paths, hidden)
    ]
    rules += [(p, device_access) for p in devices]
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that is not there needs no rule
            try:
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
                if access is None:
                    access = FS_READ_FILE | (FS_READ_DIR if is_dir else 0)
                rule = _PathBeneathAttr(access, fd)
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset),
                                ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:  # fmt: skip
                    return error(f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return True
