"""The third confinement layer, seccomp-bpf: an allow-list of the system calls computing
needs (enough for Python, numpy, torch, mujoco, gymnasium and stable-baselines3, and for
writing to descriptors opened before). Everything else fails with EPERM: opening a file for
writing, sockets, execve, new processes (threads only if asked for), namespaces, mounts,
ptrace, bpf, keyrings, signals to other processes, file-system changes."""

from __future__ import annotations

import contextlib
import errno
import os
from types import ModuleType

from eureka_lab.isolation.kernel import PR_GET_NO_NEW_PRIVS

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
# prctl options that read state or name a thread.
ALLOWED_PRCTLS = (
    3,  # PR_GET_DUMPABLE
    15,  # PR_SET_NAME
    16,  # PR_GET_NAME
    PR_GET_NO_NEW_PRIVS,
    0x53564D41,  # PR_SET_VMA (anonymous mapping names, glibc 2.38+)
)


def load_pyseccomp() -> ModuleType | str:
    """pyseccomp, or why it cannot be used. Imported before Landlock closes the
    filesystem: loading it looks for libseccomp.so.2 (and may run ldconfig)."""
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp.so.2 missing
        return f"pyseccomp (libseccomp) cannot be loaded: {exc}"
    return pyseccomp


def install_filter(sc: ModuleType | str, threads: bool, devices: bool = False) -> bool | str:
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
