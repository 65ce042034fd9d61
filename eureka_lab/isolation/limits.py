"""Process limits for every child that runs generated (untrusted) code.

The parent starts such a child like this::

    limits = supported(Limits())            # drop layers this machine cannot provide
    workdir = prepare_workdir(candidate_dir, limits)
    proc = subprocess.Popen(
        [sys.executable, "-m", ...],
        cwd=workdir,
        env=child_env(workdir),
        preexec_fn=preexec(limits, workdir),
        start_new_session=True,
    )
    # ... and kills the session after ``limits.wall_seconds``.

Layers, applied in the child between ``fork`` and ``exec``, in this order:

1. a fresh network namespace (``unshare(CLONE_NEWNET)``): only a loopback that is down,
   so neither the internet nor listeners on the host's 127.0.0.1 can be reached. Without
   root it comes inside a new user namespace, which also makes the child's count of
   processes its own;
2. resource limits (CPU time, address space, file size, processes and threads, open
   files, no cores);
3. ``PR_SET_NO_NEW_PRIVS`` (setuid binaries cannot raise privileges);
4. when running as root: a real uid of the child's own (:func:`job_uid`), so that
   ``RLIMIT_NPROC``, which the kernel never applies to uid 0, bounds its threads once its
   capabilities are gone; and where the interpreter allows it, the effective uid/gid
   ``nobody`` with no supplementary groups, so file permissions protect the user's files.

A layer the OS refuses does not stop the child (except a failed uid switch, which would
leave a half-privileged process): the child goes on without it and writes one
``eureka-lab sandbox: ...`` line to its stderr. :func:`capabilities` probes once, in a
throwaway child, which layers work on this machine, and :func:`describe` says so in plain
words; show it to the user at the start of a run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import resource
import signal
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eureka_lab.core.errors import RunError

__all__ = ["Limits", "child_env", "job_uid", "preexec", "prepare_workdir"]

GiB = 1024**3
MiB = 1024**2
NOBODY = 65534
JOB_UID_BASE = 0x70000000
"""Real uids of children started by root: ``JOB_UID_BASE + pid`` (:func:`job_uid`)."""

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

CHILD_ENV = frozenset(
    {
        # the interpreter and the C libraries under it
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUTF8",
        "PYTHONIOENCODING",
        "PYTHONWARNINGS",
        # thread pools (the executor sets them per job)
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        # offscreen rendering (MuJoCo through EGL on Mesa)
        "MUJOCO_GL",
        "PYOPENGL_PLATFORM",
        "EGL_PLATFORM",
        "LIBGL_ALWAYS_SOFTWARE",
        # the GPU: which device, and Warp's kernel cache
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "WARP_CACHE_PATH",
    }
)
"""The environment variables a child gets, by name: what the interpreter, the libraries and
the renderer need, and nothing else (no credentials, proxies, database URLs or tokens,
whatever they are called). ``LC_*`` locale settings pass too."""
CHILD_ENV_PREFIXES = ("LC_",)

# Layer names, in the order describe() lists them.
RLIMIT_LAYERS = {
    "cpu": ("RLIMIT_CPU", "CPU time"),
    "memory": ("RLIMIT_AS", "address space"),
    "file_size": ("RLIMIT_FSIZE", "file size"),
    "processes": ("RLIMIT_NPROC", "processes"),
    "open_files": ("RLIMIT_NOFILE", "open files"),
    "core": ("RLIMIT_CORE", "core dumps"),
}


@dataclass(frozen=True)
class Limits:
    """Limits for one child that runs generated code. ``None`` leaves a limit as it is."""

    cpu_seconds: int | None = 4 * 3600
    """RLIMIT_CPU: CPU seconds summed over all threads. SIGXCPU at the limit, SIGKILL 2 s later."""
    wall_seconds: float | None = 3600.0
    """Wall-clock limit. Not an rlimit: the parent enforces it by killing the session."""
    memory_bytes: int | None = 8 * GiB
    """RLIMIT_AS (address space, not resident memory). torch + numpy + mujoco reserve a few
    GB of address space, hence 8 GiB. CUDA and JAX reserve far more address space than they
    use: use ``None`` for children that train on a GPU."""
    file_size_bytes: int | None = 256 * MiB
    """RLIMIT_FSIZE: largest file the child may write (a policy.zip is a few MB)."""
    max_processes: int | None = 512
    """RLIMIT_NPROC: processes *and threads* of the child. Counted for the child alone: as
    root it runs under a real uid of its own (:func:`job_uid`), otherwise in a user
    namespace of its own."""
    open_files: int | None = 1024
    """RLIMIT_NOFILE: open file descriptors."""
    network: bool = False
    """False: the child gets a fresh network namespace with nothing reachable."""
    drop_privileges: bool = True
    """When the parent is root, run the child as ``uid``/``gid`` with no supplementary groups."""
    uid: int = NOBODY
    """The unprivileged uid (``nobody``). Give concurrent children distinct uids to keep
    them from touching each other's work folders."""
    gid: int = NOBODY

    @property
    def drops(self) -> bool:
        """Whether a child started with these limits switches uid (only root can)."""
        return self.drop_privileges and os.geteuid() == 0


# ----------------------------------------------------------------------------- environment


def child_env(
    workdir: str | os.PathLike[str], base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a child: the names of :data:`CHILD_ENV` (and ``LC_*``) that
    ``base_env`` (default ``os.environ``) holds, with HOME, TMPDIR and the caches of
    matplotlib, torch and triton inside ``workdir``."""
    work = Path(workdir).absolute()
    base = os.environ if base_env is None else base_env
    env = {k: v for k, v in base.items() if k in CHILD_ENV or k.startswith(CHILD_ENV_PREFIXES)}
    cache = work / ".cache"
    env.update(
        HOME=str(work),
        TMPDIR=str(work / "tmp"),
        XDG_CACHE_HOME=str(cache),
        MPLCONFIGDIR=str(cache / "matplotlib"),
        TORCHINDUCTOR_CACHE_DIR=str(cache / "torchinductor"),
        TRITON_CACHE_DIR=str(cache / "triton"),
    )
    return env


def blocked_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder on ``path`` (itself included) that ``uid`` cannot enter, or None."""
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except OSError:
            return folder
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def prepare_workdir(path: str | os.PathLike[str], limits: Limits) -> Path:
    """Create ``path`` with the ``tmp`` and ``.cache`` folders :func:`child_env` points to,
    and, when the child will drop privileges, give the whole tree to ``limits.uid`` so
    the child can write there (and nowhere else of the user's).

    Raises :class:`RunError` when a parent folder would keep the child out.
    """
    work = Path(path).absolute()
    for sub in ("", "tmp", ".cache"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    if not limits.drops:
        return work
    blocked = blocked_ancestor(work.parent, limits.uid, limits.gid)
    if blocked is not None:
        raise RunError(
            f"Work folder {work} is inside {blocked}, which uid {limits.uid} cannot enter "
            f"(mode {stat.filemode(blocked.stat().st_mode)}). Put runs under a folder others "
            f"can traverse (e.g. /tmp or /srv), or set drop_privileges=False."
        )
    for root, dirs, files in os.walk(work):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, limits.uid, limits.gid, follow_symlinks=False)
    os.chmod(work, 0o700)
    return work


# ----------------------------------------------------------------------------- the child side


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def _errno_text(err: int) -> str:
    return f"errno {errno.errorcode.get(err, err)}"


def job_uid(pid: int) -> int:
    """The real uid a child started by root runs under: one of its own, never 0, so that
    ``RLIMIT_NPROC`` (which the kernel counts per real uid, and never for uid 0) bounds the
    child's own processes and threads, and no other's."""
    return JOB_UID_BASE + pid


def _apply(limits: Limits, workdir: str, libc: ctypes.CDLL | None) -> dict[str, str]:
    """Apply ``limits`` to this process. Returns {layer: why it failed} for the layers
    that could not be applied. Runs between fork and exec: no imports, no threads."""
    failed: dict[str, str] = {}
    root = os.geteuid() == 0

    # Namespaces first. Without root, the network namespace comes inside a new user
    # namespace, made even when the network stays, because there RLIMIT_NPROC (set below,
    # after it) counts the job's own processes, not every process of the user.
    if libc is None:
        failed["network"] = "libc could not be loaded to call unshare()"
    elif root and not limits.network:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            failed["network"] = f"unshare(CLONE_NEWNET) not permitted here ({_errno_text(err)})"
    elif not root:
        flags = CLONE_NEWUSER | (0 if limits.network else CLONE_NEWNET)
        if libc.unshare(flags) != 0:
            err = ctypes.get_errno()
            why = f"unshare(CLONE_NEWUSER) not permitted here ({_errno_text(err)})"
            if not limits.network:
                failed["network"] = why
            if limits.max_processes is not None:
                failed["processes"] = f"counted over all of this user's processes: {why}"

    wanted = {
        "cpu": None if limits.cpu_seconds is None else (limits.cpu_seconds, limits.cpu_seconds + 2),
        "memory": limits.memory_bytes,
        "file_size": limits.file_size_bytes,
        "processes": limits.max_processes,
        "open_files": limits.open_files,
        "core": 0,
    }
    for layer, value in wanted.items():
        if value is None:
            continue
        soft, hard = value if isinstance(value, tuple) else (value, value)
        which = getattr(resource, RLIMIT_LAYERS[layer][0])
        try:
            _, cur_hard = resource.getrlimit(which)
            if cur_hard != resource.RLIM_INFINITY:  # cannot raise a hard limit: keep under it
                soft, hard = min(soft, cur_hard), min(hard, cur_hard)
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as exc:
            failed[layer] = f"setrlimit({RLIMIT_LAYERS[layer][0]}) failed: {exc}"

    if libc is None or libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno() if libc is not None else 0
        failed["no_new_privs"] = f"prctl(PR_SET_NO_NEW_PRIVS) failed ({_errno_text(err)})"

    if root:
        # A failure here raises: Popen reports it rather than run the code as root. The
        # real uid is the job's own (job_uid), so that RLIMIT_NPROC binds once the job has
        # dropped its capabilities; the effective uid, which file access uses, is nobody
        # when privileges drop, else stays root (the interpreter may live where only root
        # can read, e.g. /root/.pyenv; Landlock and seccomp decide what it may touch).
        uid = limits.uid if limits.drops else 0
        gid = limits.gid if limits.drops else 0
        if limits.drops:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
        os.setresuid(job_uid(os.getpid()), uid, uid)
        os.chdir(workdir)
    # Die with the orchestrator (even on SIGKILL), so a resumed run never races an orphan.
    if libc is None or libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        failed["parent_death"] = "prctl(PR_SET_PDEATHSIG) failed"
    return failed


def preexec(
    limits: Limits, workdir: str | os.PathLike[str], *, _report_fd: int | None = None
) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen` that applies ``limits`` in the child.

    Call it in the parent (it checks ``workdir`` and loads libc there, since a forked
    child of a threaded parent must not). It does exactly what ``limits`` says; pass
    ``supported(limits)`` to leave out a uid switch this machine cannot do. A layer the
    OS refuses is reported on the child's stderr and the child goes on without it.
    """
    work = Path(workdir).absolute()
    if not work.is_dir():
        raise RunError(f"Work folder {work} does not exist; create it with prepare_workdir().")
    if limits.drops and work.stat().st_uid != limits.uid:
        raise RunError(
            f"Work folder {work} is not owned by uid {limits.uid}, so the child could not "
            f"write there; call prepare_workdir({str(work)!r}, limits) first."
        )
    libc = _libc()
    workdir_str = str(work)

    def _preexec() -> None:
        failed = _apply(limits, workdir_str, libc)
        for layer, why in failed.items():
            os.write(2, f"eureka-lab sandbox: {layer} NOT applied: {why}\n".encode())
        if _report_fd is not None:
            os.write(_report_fd, json.dumps(failed).encode())

    return _preexec
