"""Confinement of a process that is about to run candidate code, applied once its set-up is
done (imports made, environments built): after :func:`lock_down` it can only compute.

Three kernel mechanisms, in this order:

1. **No capabilities.** The bounding set is emptied (``PR_CAPBSET_DROP``), the ambient set
   cleared, and the effective, permitted and inheritable sets zeroed (``capset``), with
   ``no_new_privs`` set. Root in a container is then no stronger than ``nobody``: it cannot
   ``setns`` into another namespace, load BPF, trace, mount, or override file permissions.
2. **Landlock** (Linux 5.13+, unprivileged): the filesystem is readable only beneath the
   given paths (the interpreter, the installed packages, system libraries) and writable
   nowhere; on ABI 4+ no TCP bind or connect; on ABI 6+ no signals to processes outside
   the domain and no abstract unix sockets.
3. **seccomp-bpf** (libseccomp through ``pyseccomp``): an allow-list of the system calls
   computing needs. ``open``/``openat`` only without write, create, truncate or append
   flags; ``clone`` only for threads; no ``socket``, ``connect``, ``execve``, ``fork``,
   ``setns``, ``unshare``, ``mount``, ``ptrace``, ``bpf``, ``keyctl`` and the rest: they
   fail with ``EPERM``; signals only to the process itself.

Writing to descriptors opened before (the pipe to the parent, the log) keeps working. A
layer the kernel refuses does not crash the process: :func:`lock_down` reports it, and the
executor refuses to run candidate code without every layer unless the user accepted a
weaker sandbox (``--allow-weak-sandbox``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["LAYERS", "default_read_paths", "landlock_abi", "lock_down", "probe"]

LAYERS = ("capabilities", "landlock", "seccomp")

# prctl
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# landlock (x86-64 and aarch64 share these numbers)
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# open flags that write
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CLONE_THREAD = 0x00010000

ALLOWED_SYSCALLS = (
    # memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mlock",
    "munlock",
    "membarrier",
    "get_mempolicy",
    "set_mempolicy",
    "mbind",
    # descriptors already open, and reading
    "read",
    "readv",
    "pread64",
    "preadv",
    "preadv2",
    "write",
    "writev",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "lseek",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "fstatfs",
    "statfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents64",
    "readlink",
    "readlinkat",
    "getcwd",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "pipe",
    "pipe2",
    "eventfd2",
    "ioctl",
    "fadvise64",
    "flock",
    # time, randomness, identity
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getrandom",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getgroups",
    "getresuid",
    "getresgid",
    "getpgrp",
    "getpgid",
    "getsid",
    "uname",
    "sysinfo",
    "getrusage",
    "times",
    "getcpu",
    "getpriority",
    "getrlimit",
    # threads and signals inside this process
    "futex",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "sigaltstack",
    "tgkill",
    "restart_syscall",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "arch_prctl",
    "prctl",
)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)  # the C library this process already uses


def _errno_text() -> str:
    err = ctypes.get_errno()
    return f"{errno.errorcode.get(err, err)} ({os.strerror(err)})"


# ----------------------------------------------------------------------------- capabilities


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities(libc: ctypes.CDLL) -> bool | str:
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}"
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        # EINVAL: no such capability here; EPERM: no CAP_SETPCAP, so an unprivileged
        # process whose capability sets are emptied below cannot use the bounding set anyway.
        failed = libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
        if failed and ctypes.get_errno() not in (errno.EINVAL, errno.EPERM):
            return f"prctl(PR_CAPBSET_DROP, {cap}) failed: {_errno_text()}"
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        return f"capset() failed: {_errno_text()}"
    return True


# ----------------------------------------------------------------------------- landlock


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable."""
    if sys.platform != "linux":
        return 0
    libc = _libc()
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(abi), 0)


def _landlock(libc: ctypes.CDLL, read_paths: Iterable[str]) -> bool | str:
    abi = landlock_abi()
    if abi < 1:
        return "Landlock is not available on this kernel (Linux 5.13+ with landlock enabled)"
    fs = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(fs, 0, 0)
    size = ctypes.sizeof(ctypes.c_uint64)
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 2 * ctypes.sizeof(ctypes.c_uint64)
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 3 * ctypes.sizeof(ctypes.c_uint64)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        return f"landlock_create_ruleset failed: {_errno_text()}"
    try:
        for path in read_paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that does not exist here grants nothing
            try:
                is_dir = os.path.isdir(path)
                access = (FS_READ_FILE | FS_READ_DIR) if is_dir else FS_READ_FILE
                rule = _PathBeneath(access & fs, fd)
                if (
                    libc.syscall(
                        SYS_LANDLOCK_ADD_RULE,
                        ruleset,
                        LANDLOCK_RULE_PATH_BENEATH,
                        ctypes.byref(rule),
                        0,
                    )
                    != 0
                ):
                    return f"landlock_add_rule({path}) failed: {_errno_text()}"
            finally:
                os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return f"landlock_restrict_self failed: {_errno_text()}"
    finally:
        os.close(ruleset)
    return True


# ----------------------------------------------------------------------------- seccomp


def _load_pyseccomp() -> object | str:
    """The libseccomp binding, loaded before any layer (finding the library needs files)."""
    try:
        import pyseccomp
    except (ImportError, OSError) as e:
        return f"libseccomp is not available ({type(e).__name__}: {e}); pip install pyseccomp"
    return pyseccomp


def _seccomp(sc: object, threads: bool) -> bool | str:
    if isinstance(sc, str):
        return sc
    try:
        f = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
        for name in ALLOWED_SYSCALLS:
            try:
                f.add_rule(sc.ALLOW, name)
            except (RuntimeError, ValueError, OSError):
                continue  # not a system call on this architecture
        for name, arg in (("openat", 2), ("open", 1), ("creat", None)):
            if arg is None:
                continue
            f.add_rule(sc.ALLOW, name, sc.Arg(arg, sc.MASKED_EQ, _WRITE_FLAGS, 0))
        if threads:
            f.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, CLONE_THREAD))
        # Signals only to this process itself (raise(), pthread_kill, os.kill(os.getpid())).
        pid = os.getpid()
        f.add_rule(sc.ALLOW, "kill", sc.Arg(0, sc.EQ, pid))
        f.add_rule(sc.ALLOW, "tgkill", sc.Arg(0, sc.EQ, pid))
        # glibc tries clone3 first for threads; its flags sit in a struct seccomp cannot
        # read, so make it say "not implemented" and glibc falls back to clone.
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        f.load()
    except Exception as e:  # the kernel refused the filter
        return f"seccomp filter not loaded ({type(e).__name__}: {e})"
    return True


# ----------------------------------------------------------------------------- together


def lock_down(
    read_paths: Sequence[str | os.PathLike[str]], *, threads: bool = True
) -> dict[str, bool | str]:
    """Confine this process: no capabilities, read-only access beneath ``read_paths`` and
    no writes anywhere (Landlock), an allow-list of system calls (seccomp). Returns
    ``{layer: True or why it is missing}``; never raises for a refused layer."""
    if sys.platform != "linux":
        return dict.fromkeys(LAYERS, f"not available on {sys.platform}")
    libc = _libc()
    sc = _load_pyseccomp()
    landlock_abi()
    state: dict[str, bool | str] = {"capabilities": _drop_capabilities(libc)}
    state["landlock"] = _landlock(libc, [os.fspath(p) for p in read_paths])
    state["seccomp"] = _seccomp(sc, threads)
    return state


def default_read_paths(extra: Iterable[str | os.PathLike[str] | None] = ()) -> list[str]:
    """What a job process may read once confined: the interpreter and its libraries, the
    installed packages, this package and its data, system libraries, and ``extra`` (the
    task's folder). Not the user's home, not the run directory."""
    import eureka_lab

    package = Path(eureka_lab.__file__).resolve().parent
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        str(package),
        str(package.parent / "envs"),
        str(package.parent / "prompts"),
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/usr/share/zoneinfo",
        "/usr/share/glvnd",
        "/usr/share/egl",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/proc/self",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys/devices/system/cpu",
        "/dev/null",
        "/dev/urandom",
    }
    for entry in sys.path:
        p = Path(entry or ".").resolve()
        if p.is_dir() and ("site-packages" in p.parts or "dist-packages" in p.parts):
            paths.add(str(p))
    for item in extra:
        if item:
            paths.add(os.fspath(item))
    return sorted(p for p in paths if os.path.exists(p))


# ----------------------------------------------------------------------------- probing

_PROBE = r"""
import json, os, socket, sys, tempfile
from eureka_lab import lockdown
scratch = sys.argv[1]
state = lockdown.lock_down(lockdown.default_read_paths())
seen = {k: (v if v is True else str(v)) for k, v in state.items()}
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
# An unprivileged process cannot empty its bounding set (no CAP_SETPCAP), nor use it: with
# no_new_privs set and exec forbidden it can never gain what the set still names.
names = ("CapEff", "CapPrm") + (("CapBnd",) if os.geteuid() == 0 else ())
caps = [int(status[k].strip(), 16) for k in names]
checks = {"caps_zero": not any(caps), "seccomp_mode": status["Seccomp"].strip() == "2"}
try:
    open(os.path.join(scratch, "written"), "w").close()
    checks["write_refused"] = False
except OSError:
    checks["write_refused"] = True
try:
    open(os.path.join(scratch, "secret")).read()
    checks["read_refused"] = False
except OSError:
    checks["read_refused"] = True
try:
    socket.socket()
    checks["socket_refused"] = False
except OSError:
    checks["socket_refused"] = True
print(json.dumps({"layers": seen, "checks": checks}))
"""


@functools.cache
def probe(python: str | None = None) -> dict[str, bool | str]:
    """Which confinement layers hold on this machine, seen from a throwaway child that
    locks itself down and then tries to write, read outside its paths and open a socket.
    ``{layer: True}`` or ``{layer: "why not"}``; cached."""
    import json
    import shutil
    import subprocess
    import tempfile

    scratch = tempfile.mkdtemp(prefix="eureka-lockdown-probe-")
    try:
        Path(scratch, "secret").write_text("x")
        proc = subprocess.run(
            [python or sys.executable, "-c", _PROBE, scratch],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            return dict.fromkeys(LAYERS, f"the probe child failed: {why}")
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return dict.fromkeys(LAYERS, f"the probe child did not run: {e}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    layers, checks = seen["layers"], seen["checks"]
    out: dict[str, bool | str] = {}
    out["capabilities"] = (
        layers["capabilities"]
        if layers["capabilities"] is not True
        else (True if checks["caps_zero"] else "capabilities are still set in the child")
    )
    out["landlock"] = (
        layers["landlock"]
        if layers["landlock"] is not True
        else (
            True
            if checks["write_refused"] and checks["read_refused"]
            else "the child could still write or read outside its paths"
        )
    )
    out["seccomp"] = (
        layers["seccomp"]
        if layers["seccomp"] is not True
        else (
            True
            if checks["seccomp_mode"] and checks["socket_refused"]
            else "the filter is not in force in the child"
        )
    )
    return out
