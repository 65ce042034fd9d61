"""The confinement a child puts itself under once its set-up is done, before it loads
untrusted code. Three kernel layers, applied in this order by :func:`lock_down`:

1. **capabilities**: every capability dropped (bounding set, ambient set, then the
   effective, permitted and inheritable sets), and ``no_new_privs`` set, so that root in
   a container is no stronger than an ordinary user;
2. **landlock** (Linux 5.13+): the filesystem is read-only beneath the given paths and
   closed everywhere else; nothing can be created, written, truncated, removed or
   renamed anywhere. Where the kernel knows them (Landlock ABI 4 and 6), TCP bind and
   connect, abstract unix sockets and signals to processes outside the child are refused
   too. Works for unprivileged users.
3. **seccomp**: an allow-list of system calls, enough for Python, numpy, torch, mujoco,
   gymnasium and stable-baselines3 to compute and to write to descriptors opened before
   (a pipe, the log). Everything else fails with EPERM: opening a file for writing,
   sockets, execve, new processes (threads only if asked for), namespaces, mounts,
   ptrace, bpf, keyrings, signals to other processes, file-system changes.

Descriptors opened before :func:`lock_down` keep working (neither Landlock nor seccomp
looks at them), so a child opens whatever it must write (result file, log) first.

A layer the OS refuses does not stop the child: :func:`lock_down` reports it, and
:func:`probe` checks in a throwaway child which layers really hold on this machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["LAYERS", "default_read_paths", "lock_down", "probe", "read_rules"]

LAYERS = ("capabilities", "landlock", "seccomp")

# ----------------------------------------------------------------------------- constants

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522

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

# open(2) flags that write or create.
O_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = (
    0x00020000  # NEWNS
    | 0x02000000  # NEWCGROUP
    | 0x04000000  # NEWUTS
    | 0x08000000  # NEWIPC
    | 0x10000000  # NEWUSER
    | 0x20000000  # NEWPID
    | 0x40000000  # NEWNET
)

# System calls a computing process needs; no argument checks. Names the running
# architecture lacks are skipped.
ALLOWED_SYSCALLS = (
    # reading and writing descriptors already open
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "lseek",
    "ftruncate",
    "fsync",
    "fdatasync",
    "fadvise64",
    "pipe",
    "pipe2",
    "eventfd2",
    # looking at files (Landlock decides which)
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
    "readlink",
    "readlinkat",
    "getdents",
    "getdents64",
    "getcwd",
    # memory
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "brk",
    "mincore",
    "msync",
    "membarrier",
    # threads' synchronisation, time, randomness
    "futex",
    "futex_waitv",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getrandom",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_getattr",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "getpriority",
    # waiting on descriptors
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    # signals to itself
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "sigaltstack",
    "restart_syscall",
    # who and where am I
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
    "getrlimit",
    "umask",
    "arch_prctl",
    "exit",
    "exit_group",
)

# ioctl requests that only ask about a descriptor: isatty (TCGETS), bytes waiting,
# non-blocking and close-on-exec flags, terminal size.
ALLOWED_IOCTLS = (0x5401, 0x541B, 0x5421, 0x5450, 0x5451, 0x5413)
# The NVIDIA driver's ioctls, allowed only when a job opens a GPU (``devices``): every
# request of the control and GPU devices has type 'F' (NV_IOCTL_MAGIC, the second byte);
# the unified-memory device numbers its requests 1..255, plus two fixed ones.
NVIDIA_IOCTL_TYPE = ord("F") << 8
NVIDIA_UVM_IOCTLS = (0x30000001, 0x30000002)  # UVM_INITIALIZE, UVM_DEINITIALIZE
NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
NVIDIA_READ_PATHS = ("/proc/driver/nvidia", "/sys/bus/pci/devices", "/sys/devices")
# prctl options that read state or name a thread.
ALLOWED_PRCTLS = (
    3,  # PR_GET_DUMPABLE
    15,  # PR_SET_NAME
    16,  # PR_GET_NAME
    PR_GET_NO_NEW_PRIVS,
    0x53564D41,  # PR_SET_VMA (anonymous mapping names, glibc 2.38+)
)


# ----------------------------------------------------------------------------- helpers


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _err(what: str) -> str:
    err = ctypes.get_errno()
    return f"{what} failed ({errno.errorcode.get(err, err)}: {os.strerror(err)})"


def _status() -> dict[str, str]:
    with open("/proc/self/status") as f:
        return dict(line.split(":", 1) for line in f if ":" in line)


def _other_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task")) - 1
    except OSError:
        return 0


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
    problems = []
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        problems.append(_err("prctl(PR_SET_NO_NEW_PRIVS)"))
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
        problems.append(_err("capset"))

    status = _status()
    held = [k for k in ("CapEff", "CapPrm", "CapInh", "CapAmb") if int(status.get(k, "0"), 16)]
    nnp = status.get("NoNewPrivs", "").strip() == "1"
    if int(status.get("CapBnd", "0"), 16) and not nnp:
        held.append("CapBnd")
    if held:
        problems.append("still held: " + ", ".join(f"{k} {status[k].strip()}" for k in held))
    if not nnp:
        problems.append("no_new_privs is not set")
    return "; ".join(problems) if problems else True


# ----------------------------------------------------------------------------- landlock


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
    libc = _libc()
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))  # fmt: skip
    if abi < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return f"the kernel ({os.uname().release}) has no Landlock (Linux 5.13 or later)"
        if err == errno.EOPNOTSUPP:
            return "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)"
        return _err("landlock_create_ruleset(VERSION)")
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


def _landlock(
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
        return _err("landlock_create_ruleset")
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
                    return _err(f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return _err("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return True


# ----------------------------------------------------------------------------- seccomp


def _load_pyseccomp() -> ModuleType | str:
    """pyseccomp, or why it cannot be used. Imported before Landlock closes the
    filesystem: loading it looks for libseccomp.so.2 (and may run ldconfig)."""
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so.2 missing
        return f"pyseccomp (libseccomp) cannot be loaded: {exc}"
    return pyseccomp


def _seccomp(sc: ModuleType | str, threads: bool, devices: bool = False) -> bool | str:
    if isinstance(sc, str):
        return sc
    try:
        f = sc.SyscallFilter(sc.ERRNO(errno.EPERM))
        f.set_attr(sc.Attr.CTL_TSYNC, 1)  # every thread, not just this one
        for name in ALLOWED_SYSCALLS:
            try:
                f.add_rule(sc.ALLOW, name)
            except (OSError, ValueError):
                continue  # not a system call on this architecture
        # open only for reading (masked comparison on the flags argument)
        f.add_rule(sc.ALLOW, "openat", sc.Arg(2, sc.MASKED_EQ, O_WRITING, 0))
        with contextlib.suppress(OSError, ValueError):  # aarch64 has no open(2)
            f.add_rule(sc.ALLOW, "open", sc.Arg(1, sc.MASKED_EQ, O_WRITING, 0))
        for request in ALLOWED_IOCTLS:
            f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.EQ, request))
        if devices:
            # The GPU driver: its ioctls, and opening its device files read-write (which
            # files: Landlock's rules; the driver opens more for some mappings).
            f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFF00, NVIDIA_IOCTL_TYPE))
            f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFF00, 0))
            for request in NVIDIA_UVM_IOCTLS:
                f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.EQ, request))
            f.add_rule(sc.ALLOW, "openat", sc.Arg(2, sc.MASKED_EQ, O_WRITING, os.O_RDWR))
        for option in ALLOWED_PRCTLS:
            f.add_rule(sc.ALLOW, "prctl", sc.Arg(0, sc.EQ, option))
        # resource limits may be read, never changed
        f.add_rule(sc.ALLOW, "prlimit64", sc.Arg(2, sc.EQ, 0))
        # signals only to itself (the pid is fixed: no fork after this)
        pid = os.getpid()
        f.add_rule(sc.ALLOW, "kill", sc.Arg(0, sc.EQ, pid))
        f.add_rule(sc.ALLOW, "tgkill", sc.Arg(0, sc.EQ, pid))
        if threads:
            f.add_rule(
                sc.ALLOW,
                "clone",
                sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD | CLONE_NAMESPACES, CLONE_THREAD),
            )
        # clone3 passes its flags in memory, out of a filter's reach: glibc falls back
        # to clone when it sees ENOSYS.
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        f.load()
    except OSError as exc:
        return f"the seccomp filter could not be installed: {exc}"
    return True


# ----------------------------------------------------------------------------- public


def lock_down(
    read_paths: Sequence[str | os.PathLike[str]],
    *,
    threads: bool = True,
    layers: Collection[str] = LAYERS,
    devices: Sequence[str | os.PathLike[str]] = (),
    hidden: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, bool | str]:
    """Confine this process for good: no capabilities, the filesystem read-only beneath
    ``read_paths`` except beneath ``hidden`` (and closed elsewhere), and a seccomp
    allow-list. ``threads`` lets it start threads (never processes). Call once set-up is
    done, while single-threaded, right before untrusted code is loaded. ``layers`` applies
    only some of :data:`LAYERS` (tests use it to show which layer stops what).

    ``hidden``: what the process must not read even where it lies beneath a readable
    folder (a task's fitness and hand-written rewards, the run folder).

    ``devices``: device files the process may also open read-write and drive with the
    GPU driver's ioctls (:func:`gpu_devices`, for a job that computes on a GPU); the
    rest of the boundary stays as it is.

    Returns ``{layer: True}`` or ``{layer: "why not"}`` for each layer applied; a layer
    the OS refuses is reported, never raised.
    """
    paths = [os.fspath(p) for p in read_paths]
    device_paths = [os.fspath(p) for p in devices]
    result: dict[str, bool | str] = {}
    if not sys.platform.startswith("linux"):
        return dict.fromkeys(layers, f"only Linux has these layers; this is {sys.platform}")
    libc = _libc()
    sc = _load_pyseccomp() if "seccomp" in layers else ""
    # tempfile picks its folder by writing a file there: let it, once, before it cannot.
    with contextlib.suppress(OSError):
        tempfile.gettempdir()
    others = _other_threads()
    if "capabilities" in layers:
        result["capabilities"] = _drop_capabilities(libc)
    if "landlock" in layers:
        result["landlock"] = _landlock(libc, paths, device_paths, [os.fspath(h) for h in hidden])
    if "seccomp" in layers:
        result["seccomp"] = _seccomp(sc, threads, bool(device_paths))
    if others:
        # Capabilities and Landlock bind the calling thread and the threads it starts later.
        why = (
            f"{others} other thread(s) were already running and are not covered "
            "(set OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1, or lock down earlier)"
        )
        for layer in ("capabilities", "landlock"):
            if result.get(layer) is True:
                result[layer] = why
    return result


def gpu_devices() -> list[str]:
    """The NVIDIA device files of this machine (control, unified memory, each GPU, and
    the capability files): what a CUDA process keeps talking to after it is confined."""
    import glob

    found = [p for p in NVIDIA_DEVICES if os.path.exists(p)]
    found += sorted(glob.glob("/dev/nvidia[0-9]*")) + sorted(glob.glob("/dev/nvidia-caps/*"))
    return found


def _loaded_package_dirs(entry: Path) -> list[str]:
    """Folders (or files) of the modules already imported from the sys.path ``entry``."""
    found: set[str] = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        try:
            rel = Path(file).resolve().relative_to(entry)
        except (ValueError, OSError):
            continue
        found.add(str(entry / rel.parts[0]))
    return sorted(found)


def default_read_paths(extra: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """What a job child needs to read: the interpreter's prefixes, every ``sys.path``
    folder inside them, the package folders already imported from other ``sys.path``
    entries (an editable checkout: its package folder, never the checkout with its tasks
    and runs), the system libraries, and a few files under /proc/self, /sys and /dev.
    Neither the user's home (outside the prefix) nor the run folder. What must stay
    unreadable beneath these (a task's private files) is :func:`lock_down`'s ``hidden``."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths: list[str] = [str(p) for p in sorted(prefixes)]
    for raw in sys.path:
        entry = Path(raw or os.getcwd()).resolve()
        if not entry.is_dir():
            continue
        if any(entry == p or p in entry.parents for p in prefixes):
            paths.append(str(entry))
        else:
            paths.extend(_loaded_package_dirs(entry))
    paths += [
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/usr/share/zoneinfo",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/proc/self",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/sys/devices/system/cpu",
        "/dev/null",
        "/dev/urandom",
    ]
    paths += [os.fspath(p) for p in extra]
    seen: dict[str, None] = {}
    for p in paths:
        if os.path.exists(p):
            seen.setdefault(p)
    return list(seen)


_PROBE = r"""
import json, os, sys
import pyseccomp  # noqa: F401 - loaded before Landlock closes the filesystem
from eureka_lab.isolation.lockdown import default_read_paths, lock_down
scratch, outside = sys.argv[1], sys.argv[2]
def attempt(fn):
    try:
        fn()
        return "done"
    except OSError as exc:
        return exc.errno
write = lambda: open(os.path.join(scratch, "w.txt"), "w").close()
# Landlock first, alone: seccomp would refuse the write before Landlock is asked.
paths = default_read_paths()
result = {"layers": lock_down(paths, layers=("capabilities", "landlock"))}
result["write"] = attempt(write)
result["read_outside"] = attempt(lambda: open(outside).read())
result["layers"].update(lock_down(paths, layers=("seccomp",)))
result["fork"] = attempt(lambda: os._exit(0) if os.fork() == 0 else None)
result["write_seccomp"] = attempt(write)
with open("/proc/self/status") as f:
    result["status"] = {k: v.strip() for k, v in (l.split(":", 1) for l in f if ":" in l)}
sys.stdout.write(json.dumps(result))
"""


@functools.cache
def probe(python: str | None = None) -> dict[str, bool | str]:
    """Which layers of :func:`lock_down` hold on this machine, checked in a throwaway
    child running ``python`` (default ``sys.executable``): ``{layer: True or "why not"}``.
    The child reports what the kernel says (/proc/self/status) and whether writing a file
    and reading one outside the read paths are refused. Cached."""
    python = python or sys.executable
    with tempfile.TemporaryDirectory(prefix="eureka-lockdown-probe-") as tmp:
        scratch = os.path.join(tmp, "scratch")
        os.mkdir(scratch)
        outside = os.path.join(tmp, "outside.txt")
        Path(outside).write_text("secret")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        here = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.run(
                [python, "-c", _PROBE, scratch, outside],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=tmp,
            )
            seen = json.loads(proc.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return dict.fromkeys(LAYERS, f"the probe child did not run: {exc}")
    layers, status = seen["layers"], seen["status"]
    out: dict[str, bool | str] = {}

    caps = {k: int(status.get(k, "0"), 16) for k in ("CapEff", "CapPrm", "CapInh", "CapBnd")}
    held = [k for k in ("CapEff", "CapPrm", "CapInh") if caps[k]]
    if caps["CapBnd"] and status.get("NoNewPrivs") != "1":
        held.append("CapBnd")
    if layers["capabilities"] is not True:
        out["capabilities"] = layers["capabilities"]
    elif held:
        out["capabilities"] = "the child still holds " + ", ".join(held)
    else:
        out["capabilities"] = True

    if layers["landlock"] is not True:
        out["landlock"] = layers["landlock"]
    elif seen["write"] != errno.EACCES or seen["read_outside"] != errno.EACCES:
        out["landlock"] = (
            f"writing gave {seen['write']!r} and reading outside gave "
            f"{seen['read_outside']!r}, not EACCES"
        )
    else:
        out["landlock"] = True

    if layers["seccomp"] is not True:
        out["seccomp"] = layers["seccomp"]
    elif status.get("Seccomp") != "2" or {seen["fork"], seen["write_seccomp"]} != {errno.EPERM}:
        out["seccomp"] = (
            f"Seccomp: {status.get('Seccomp')}; fork gave {seen['fork']!r} and writing "
            f"gave {seen['write_seccomp']!r}, not EPERM"
        )
    else:
        out["seccomp"] = True
    return out
