"""What the confinement layers share: libc for the system calls Python has no function for,
the prctl options they use, and what the kernel says of this process."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


@functools.cache
def load_libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def error(what: str) -> str:
    err = ctypes.get_errno()
    return f"{what} failed ({errno.errorcode.get(err, err)}: {os.strerror(err)})"


def proc_status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.split(":", 1) for line in f if ":" in line)


def other_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task")) - 1
    except OSError:
        return 0
