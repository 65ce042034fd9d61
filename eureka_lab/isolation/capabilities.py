"""The first confinement layer: every capability dropped (bounding set, ambient set, then the
effective, permitted and inheritable sets) and ``no_new_privs`` set, so that root in a
container is no stronger than an ordinary user."""

from __future__ import annotations

import ctypes
import errno

from eureka_lab.isolation.kernel import (
    LINUX_CAPABILITY_VERSION_3,
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAPBSET_DROP,
    PR_SET_NO_NEW_PRIVS,
    error,
    proc_status,
)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities(libc: ctypes.CDLL) -> bool | str:
    problems = []
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        problems.append(error("prctl(PR_SET_NO_NEW_PRIVS)"))
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    # Without CAP_SETPCAP (an ordinary user outside a user namespace) the bounding set
    # cannot shrink; such a process holds no capability and, with no_new_privs and no
    # execve, can never gain one, so that is not a weakness (checked below).
    for cap in range(last + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
            break
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        problems.append(error("capset"))

    status = proc_status()
    held = [k for k in ("CapEff", "CapPrm", "CapInh", "CapAmb") if int(status.get(k, "0"), 16)]
    nnp = status.get("NoNewPrivs", "").strip() == "1"
    if int(status.get("CapBnd", "0"), 16) and not nnp:
        held.append("CapBnd")
    if held:
        problems.append("still held: " + ", ".join(f"{k} {status[k].strip()}" for k in held))
    if not nnp:
        problems.append("no_new_privs is not set")
    return "; ".join(problems) if problems else True
