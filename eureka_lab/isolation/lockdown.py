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
import errno
import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

from eureka_lab.isolation.capabilities import drop_capabilities
from eureka_lab.isolation.kernel import load_libc, other_threads
from eureka_lab.isolation.landlock import restrict_files
from eureka_lab.isolation.seccomp import install_filter, load_pyseccomp

__all__ = ["LAYERS", "default_read_paths", "gpu_devices", "lock_down", "probe"]

LAYERS = ("capabilities", "landlock", "seccomp")

NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
NVIDIA_READ_PATHS = ("/proc/driver/nvidia", "/sys/bus/pci/devices", "/sys/devices")


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
    libc = load_libc()
    sc = load_pyseccomp() if "seccomp" in layers else ""
    # tempfile picks its folder by writing a file there: let it, once, before it cannot.
    with contextlib.suppress(OSError):
        tempfile.gettempdir()
    others = other_threads()
    if "capabilities" in layers:
        result["capabilities"] = drop_capabilities(libc)
    if "landlock" in layers:
        result["landlock"] = restrict_files(
            libc, paths, device_paths, [os.fspath(h) for h in hidden]
        )
    if "seccomp" in layers:
        result["seccomp"] = install_filter(sc, threads, bool(device_paths))
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
