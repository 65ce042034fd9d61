"""Which isolation layers hold on this machine, probed once in throwaway children, and what
they mean in plain words: :func:`capabilities` (``{layer: True or "why not"}``),
:func:`describe` (one line per layer, shown at the start of a run), and
:func:`require_strong`, which refuses to run candidate code while a boundary layer is
missing unless the user accepts a weaker sandbox."""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from eureka_lab.core.errors import SandboxError
from eureka_lab.isolation import lockdown
from eureka_lab.isolation.limits import (
    NOBODY,
    RLIMIT_LAYERS,
    GiB,
    Limits,
    MiB,
    blocked_ancestor,
    child_env,
    preexec,
    prepare_workdir,
)

__all__ = [
    "BOUNDARY",
    "LAYERS",
    "capabilities",
    "describe",
    "require_strong",
    "supported",
    "weak_layers",
]

CONFINEMENT = ("capabilities", "landlock", "seccomp")
"""Applied by the job itself once set-up is done (:mod:`eureka_lab.isolation.lockdown`)."""
LAYERS = ("network", *CONFINEMENT, "privileges", "no_new_privs", *RLIMIT_LAYERS)
BOUNDARY = (
    "network",
    *CONFINEMENT,
    "cpu",
    "memory",
    "file_size",
    "processes",
    "open_files",
    "core",
)
"""The layers a run needs before it runs candidate code (unless the user accepts a weaker
sandbox). The switch to ``nobody`` is extra where available: with no capabilities,
Landlock and seccomp, a job cannot touch files or start processes whatever its uid."""


_PROBE = r"""
import importlib, importlib.util, json, os, resource, sys
out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
       "netns": os.readlink("/proc/self/ns/net"), "rlimits": {}, "imports": {}}
for name in ("CPU", "AS", "FSIZE", "NPROC", "NOFILE", "CORE"):
    out["rlimits"][name] = resource.getrlimit(getattr(resource, "RLIMIT_" + name))
with open("/proc/self/status") as f:
    out["no_new_privs"] = any(l.split() == ["NoNewPrivs:", "1"] for l in f)
really = sys.argv[1] == "import"
for mod in sys.argv[2:]:
    try:
        if really:
            importlib.import_module(mod)
        elif importlib.util.find_spec(mod) is None:
            raise ImportError("not found")
        out["imports"][mod] = "ok"
    except Exception as exc:
        out["imports"][mod] = f"{type(exc).__name__}: {exc}"
# Does RLIMIT_NPROC bind this child alone? Capabilities dropped, as a confined job's are,
# then a low limit, then more threads than it allows.
import ctypes, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
resource.setrlimit(resource.RLIMIT_NPROC, (THREAD_LIMIT, resource.getrlimit(resource.RLIMIT_NPROC)[1]))
threading.stack_size(65536)
stop, started = threading.Event(), []
try:
    for _ in range(THREAD_TRY):
        t = threading.Thread(target=stop.wait)
        t.start()
        started.append(t)
except RuntimeError:
    pass
stop.set()
out["threads"] = len(started)
print(json.dumps(out))
"""
PROBE_THREAD_LIMIT, PROBE_THREAD_TRY = 32, 128
_PROBE = _PROBE.replace("THREAD_LIMIT", str(PROBE_THREAD_LIMIT)).replace(
    "THREAD_TRY", str(PROBE_THREAD_TRY)
)

_PROBE_LIMITS = Limits(
    cpu_seconds=60,
    memory_bytes=8 * GiB,
    file_size_bytes=256 * MiB,
    max_processes=4096,
    open_files=1024,
)
_HEAVY_MODULES = ("numpy", "torch", "gymnasium", "mujoco", "stable_baselines3")


def _run_probe(
    limits: Limits, python: str, modules: list[str]
) -> tuple[dict[str, str], dict | str]:
    """Start ``python`` under ``limits``; return (failed layers, what the child saw) or
    (failed layers, why it did not start)."""
    workdir = tempfile.mkdtemp(prefix="eureka-probe-")
    r, w = os.pipe()
    try:
        work = prepare_workdir(workdir, limits)
        try:
            proc = subprocess.run(
                [python, "-c", _PROBE, "import" if limits.drops else "find", *modules],
                cwd=work,
                env=child_env(work),
                preexec_fn=preexec(limits, work, _report_fd=w),
                start_new_session=True,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return {}, f"{python} could not be started: {exc}"
        finally:
            os.close(w)
            w = -1
        with os.fdopen(r, "rb") as f:
            r = -1
            raw = f.read()
        failed = json.loads(raw) if raw else {}
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            return failed, f"{python} failed under the limits: {tail[0]}"
        return failed, json.loads(proc.stdout)
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)


def _no_access_reason(python: str, uid: int, gid: int) -> str:
    path = Path(python).absolute()
    blocked = blocked_ancestor(path.parent, uid, gid)
    if blocked is not None:
        mode = stat.filemode(blocked.stat().st_mode)
        return f"{blocked} ({mode}) keeps uid {uid} from running {path}"
    return f"uid {uid} cannot use {path}"


@functools.cache
def capabilities(python: str | None = None) -> dict[str, bool | str]:
    """Which layers work on this machine for children running ``python`` (default
    ``sys.executable``): ``{layer: True}`` or ``{layer: "why not"}``. Probed once, in
    throwaway children; cached. Layers: see :data:`LAYERS`."""
    python = python or sys.executable
    caps: dict[str, bool | str] = {}
    base = replace(_PROBE_LIMITS, drop_privileges=False)
    failed, seen = _run_probe(base, python, list(_HEAVY_MODULES))
    if isinstance(seen, str):
        return dict.fromkeys(LAYERS, f"the probe child did not run: {seen}")

    expect = {
        "cpu": ("CPU", base.cpu_seconds),
        "memory": ("AS", base.memory_bytes),
        "file_size": ("FSIZE", base.file_size_bytes),
        "processes": ("NPROC", base.max_processes),
        "open_files": ("NOFILE", base.open_files),
        "core": ("CORE", 0),
    }
    for layer, (name, value) in expect.items():
        soft = seen["rlimits"][name][0]
        if layer in failed:
            caps[layer] = failed[layer]
        elif soft == resource.RLIM_INFINITY or soft > value:
            caps[layer] = f"RLIMIT_{name} is {soft} in the child, not {value}"
        else:
            caps[layer] = True
    if caps["processes"] is True and seen["threads"] >= PROBE_THREAD_TRY:
        caps["processes"] = (
            f"RLIMIT_NPROC does not bind: a child without capabilities started "
            f"{seen['threads']} threads under a limit of {PROBE_THREAD_LIMIT}"
        )

    if "network" in failed:
        caps["network"] = failed["network"]
    elif seen["netns"] == os.readlink("/proc/self/ns/net"):
        caps["network"] = "the child is still in the parent's network namespace"
    else:
        caps["network"] = True
    caps["no_new_privs"] = (
        failed.get("no_new_privs", True)
        if seen["no_new_privs"]
        else (failed.get("no_new_privs") or "NoNewPrivs is not set in the child")
    )

    usable = [m for m, why in seen["imports"].items() if why == "ok"]
    caps["privileges"] = _probe_privileges(python, usable)

    caps.update(lockdown.probe(python))
    return caps


def _probe_privileges(python: str, modules: list[str]) -> bool | str:
    """Whether a child can switch to ``nobody`` and still run ``python`` and import the
    ``modules`` it imports as root."""
    if os.geteuid() != 0:
        return f"not running as root (uid {os.geteuid()}): the child runs as this user"
    limits = replace(_PROBE_LIMITS, drop_privileges=True)
    _, seen = _run_probe(limits, python, modules)
    if isinstance(seen, str):
        if "Permission denied" in seen:
            return f"{_no_access_reason(python, limits.uid, limits.gid)} (Permission denied)"
        return seen
    if (seen["uid"], seen["gid"], seen["groups"]) != (limits.uid, limits.gid, []):
        return f"the child runs as uid {seen['uid']} gid {seen['gid']} groups {seen['groups']}"
    broken = {m: why for m, why in seen["imports"].items() if why != "ok"}
    if broken:
        mod, why = next(iter(broken.items()))
        return f"uid {limits.uid} cannot import {mod} with {python}: {why}"
    return True


def supported(limits: Limits, caps: Mapping[str, bool | str] | None = None) -> Limits:
    """``limits`` without a uid switch that ``caps`` (default :func:`capabilities`) says
    cannot work here, e.g. because the interpreter lives under a folder only root can
    enter. Other refused layers need no change: the child goes on without them."""
    caps = capabilities() if caps is None else caps
    if limits.drops and caps.get("privileges") is not True:
        return replace(limits, drop_privileges=False)
    return limits


_CONFINEMENT_TEXT = {
    "capabilities": "dropped (empty bounding, effective and permitted sets)",
    "landlock": "files read-only beneath the interpreter and packages, writable nowhere",
    "seccomp": "system calls limited to computing (no open for writing, sockets, exec, fork)",
}


def weak_layers(caps: Mapping[str, bool | str]) -> dict[str, str]:
    """The boundary layers that are missing, with why."""
    return {
        layer: str(caps.get(layer, "not probed"))
        for layer in BOUNDARY
        if caps.get(layer, "not probed") is not True
    }


def require_strong(caps: Mapping[str, bool | str], allow_weak: bool) -> None:
    """Raise SandboxError naming every missing boundary layer and the flag that accepts a
    weaker sandbox, unless ``allow_weak``."""
    missing = weak_layers(caps)
    if missing and not allow_weak:
        lines = "; ".join(f"{layer}: {why}" for layer, why in missing.items())
        raise SandboxError(
            f"Candidate code would run without {len(missing)} OS isolation layer"
            f"{'s' if len(missing) > 1 else ''} on this machine ({lines}). Fix the machine "
            "(see README, 'Threat model'), or accept the weaker sandbox with "
            "--allow-weak-sandbox (allow_weak_sandbox=True)."
        )


def describe(caps: Mapping[str, bool | str]) -> str:
    """One line per layer saying plainly what is active and what is not."""
    lines = []
    for layer in LAYERS:
        ok = caps.get(layer, "not probed")
        if layer in _CONFINEMENT_TEXT:
            text = _CONFINEMENT_TEXT[layer] if ok is True else f"NOT active: {ok}"
        elif layer == "network":
            text = (
                "isolated (new network namespace, loopback down)"
                if ok is True
                else f"NOT isolated: {ok}"
            )
        elif layer == "privileges":
            text = (
                f"switched to uid/gid {NOBODY} (nobody), no supplementary groups"
                if ok is True
                else f"not switched to nobody (an extra layer): {ok}"
            )
        elif layer == "no_new_privs":
            text = (
                "set (setuid binaries cannot gain privileges)" if ok is True else f"NOT set: {ok}"
            )
        else:
            rlimit, what = RLIMIT_LAYERS[layer]
            text = f"{what} limited ({rlimit})" if ok is True else f"{what} NOT limited: {ok}"
            if layer == "processes" and ok is True:
                text += ": each job's threads counted alone"
        lines.append(f"{layer}: {text}")
    return "\n".join(lines)
