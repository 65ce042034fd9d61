"""The OS layers alone: plain Python with no filter at all tries each escape, in a real child
process, once with no layer (to show the harm is real), once behind each layer alone (to show
what that layer stops), and once behind the whole set-up a job gets. Also: real training
works once confined, and the probe sees every layer.

Runs as root in CI, and again as an unprivileged user (`.ci/run`, marker ``oslayers``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from eureka_lab.isolation import limits, lockdown, probing
from eureka_lab.isolation.landlock import landlock_abi

pytestmark = [pytest.mark.oslayers, pytest.mark.slow]

ROOT = os.geteuid() == 0
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

# Each escape prints "harm" when it worked, or the name of the error that stopped it.
CHILD = r"""
import ctypes, errno, json, os, socket, sys, time
from eureka_lab.isolation import capabilities, landlock, limits, lockdown, seccomp

mode, watch, scratch, port, marker, inherited, pkg = sys.argv[1:8]
port, inherited = int(port), int(inherited)
results = {}
libc = ctypes.CDLL(None, use_errno=True)
import threading, torch  # imported before any layer, as a job's set-up does
from eureka_lab.executors.child import close_inherited
from eureka_lab.core.files import data_dir
try:  # opened before any layer; a child in its own user namespace may not open it at all
    parent_ns = os.open(f"/proc/{os.getppid()}/ns/net", os.O_RDONLY)
except OSError as e:
    parent_ns = e
paths = lockdown.default_read_paths()
sc = seccomp.load_pyseccomp()
if mode != "none":
    libc.prctl(38, 1, 0, 0, 0)  # no_new_privs, which Landlock and seccomp need unprivileged
if mode == "capabilities":
    assert capabilities.drop_capabilities(libc) is True
elif mode == "landlock":
    assert landlock.restrict_files(libc, paths) is True
elif mode == "seccomp":
    assert seccomp.install_filter(sc, True) is True
elif mode == "job":
    # What a job does: no descriptor but its own, then confinement with the task's private
    # files hidden even beneath a folder it may read (``pkg`` stands for site-packages
    # holding a wheel's built-in tasks).
    close_inherited(keep=[parent_ns] if isinstance(parent_ns, int) else [])  # setns: below
    private = [data_dir("envs"), os.path.join(pkg, "_data")]
    state = lockdown.lock_down(lockdown.default_read_paths([pkg]), hidden=private)
    assert all(v is True for v in state.values()), state


def attempt(name, fn):
    try:
        fn()
        results[name] = "harm"
    except OSError as e:
        results[name] = errno.errorcode.get(e.errno, str(e.errno))


def write_outside():
    with open(os.path.join(watch, "pwned.txt"), "w") as f:
        f.write("x")


def write_scratch():
    with open(os.path.join(scratch, "pwned.txt"), "w") as f:
        f.write("x")


def read_secret():
    open(os.path.join(watch, "secret.txt")).read()


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(b"leak")
    s.close()


def setns():
    if isinstance(parent_ns, OSError):
        raise parent_ns
    if libc.setns(parent_ns, 0x40000000) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def fork_outlives():
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            time.sleep(2)
            with open(marker, "w") as f:
                f.write("outlived")
        finally:
            os._exit(0)


def execve():
    r, w = os.pipe()
    sys.stdout.write(json.dumps(results) + "\n")
    sys.stdout.flush()
    os.execv("/bin/sh", ["sh", "-c", "echo EXECED"])


def inherited_descriptor():
    os.write(inherited, b"REGISTER:/victim:shared_memory\n")


def read_private():  # a built-in task's fitness
    open(os.path.join(data_dir("envs"), "hopper.py")).read()


def read_private_beneath():  # a private file beneath a folder the job may read
    open(os.path.join(pkg, "_data", "envs", "fitness.py")).read()


def storage(path, shared, size):
    try:
        return torch.UntypedStorage.from_file(path, shared, size)
    except RuntimeError as e:  # torch's wording of the system call's error
        for code in ("EACCES", "EPERM", "ENOENT"):
            if os.strerror(getattr(errno, code)) in str(e):
                raise OSError(getattr(errno, code), str(e)) from None
        raise


def storage_read():
    storage(os.path.join(watch, "secret.txt"), False, 6)


def storage_write():
    storage(os.path.join(watch, "pwned.txt"), True, 64)


def thread_bomb():
    threading.stack_size(65536)
    stop, started = threading.Event(), 0
    try:
        for _ in range(3000):
            threading.Thread(target=stop.wait).start()
            started += 1
    except RuntimeError:
        pass
    finally:
        stop.set()
    if started < 3000:
        raise OSError(errno.EAGAIN, f"stopped after {started} threads")


for name, fn in [("write_outside", write_outside), ("write_scratch", write_scratch),
                 ("read_secret", read_secret), ("connect", connect), ("setns", setns),
                 ("fork_outlives", fork_outlives), ("inherited_descriptor", inherited_descriptor),
                 ("read_private", read_private), ("read_private_beneath", read_private_beneath),
                 ("storage_read", storage_read), ("storage_write", storage_write),
                 ("thread_bomb", thread_bomb)]:
    attempt(name, fn)
if mode == "job":  # the split is not a wall: what a job needs beneath ``pkg`` stays readable
    open(os.path.join(pkg, "module.py")).read()
try:
    execve()
except OSError as e:
    results["execve"] = errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps(results))
"""

ESCAPES = (
    "write_outside",
    "write_scratch",
    "read_secret",
    "connect",
    "setns",
    "fork_outlives",
    "inherited_descriptor",
    "read_private",
    "read_private_beneath",
    "storage_read",
    "storage_write",
    "thread_bomb",
    "execve",
)


class Listener:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{mode: {escape: "harm" or the error that stopped it}} for each mode."""
    listener = Listener()
    out: dict[str, dict[str, str]] = {}
    for mode in ("none", "network", "capabilities", "landlock", "seccomp", "job"):
        base = tmp_path_factory.mktemp(mode)
        watch, scratch = base / "watched", base / "scratch"
        watch.mkdir()
        scratch.mkdir()
        (watch / "secret.txt").write_text("s3cret")
        marker = base / "outlived.txt"
        pkg = base / "pkg"
        (pkg / "_data" / "envs").mkdir(parents=True)
        (pkg / "_data" / "envs" / "fitness.py").write_text("SECRET = 1")
        (pkg / "module.py").write_text("PUBLIC = 1")
        preexec = None
        if mode in ("network", "job"):
            preexec = limits.preexec(limits.Limits(drop_privileges=False), scratch)
        before = listener.connections
        tracker_r, tracker_w = os.pipe()  # stands for the resource tracker's pipe
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                mode,
                str(watch),
                str(scratch),
                str(listener.port),
                str(marker),
                str(tracker_w),
                str(pkg),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=preexec,
            cwd=scratch,
            pass_fds=(tracker_w,),
            env={**os.environ, **ONE_THREAD},  # as a job: no thread before confinement
        )
        os.close(tracker_w)
        with os.fdopen(tracker_r, "rb") as tracker:
            written = tracker.read()
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        assert lines, (mode, proc.stdout, proc.stderr[-2000:])
        seen = json.loads(lines[-1])
        seen.setdefault("execve", "harm" if "EXECED" in proc.stdout else "no result")
        # What the child reported is checked against what happened outside it.
        if seen["connect"] == "harm":
            deadline = time.monotonic() + 2
            while listener.connections == before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert listener.connections > before, mode
        else:
            time.sleep(0.1)
            assert listener.connections == before, f"{mode}: a connection arrived"
        wrote = seen["write_outside"] == "harm" or seen["storage_write"] == "harm"
        assert (watch / "pwned.txt").exists() == wrote, mode
        assert bool(written) == (seen["inherited_descriptor"] == "harm"), mode
        if seen["fork_outlives"] == "harm":
            time.sleep(2.5)
            seen["fork_outlives"] = "harm" if marker.exists() else "outlived, but could not write"
        else:
            assert not marker.exists(), mode
        out[mode] = seen
    print("\n" + "\n".join(f"{m:>12}: {r}" for m, r in out.items()))
    return out


def test_every_escape_does_harm_without_the_layers(matrix):
    expected_harm = set(ESCAPES) - (set() if ROOT else {"setns"})  # needs CAP_SYS_ADMIN
    # Reading a file beneath a folder that exists only for the job's rules does harm too.
    assert {e for e in ESCAPES if matrix["none"][e] == "harm"} >= expected_harm, matrix["none"]


def test_only_closing_them_stops_inherited_descriptors(matrix):
    """No kernel layer looks at a descriptor opened before it: the job closes every one it
    did not open itself before any other layer goes on."""
    for mode in ("none", "network", "capabilities", "landlock", "seccomp"):
        assert matrix[mode]["inherited_descriptor"] == "harm", (mode, matrix[mode])
    assert matrix["job"]["inherited_descriptor"] == "EBADF", matrix["job"]


def test_the_job_set_up_bounds_a_thread_bomb(matrix):
    """RLIMIT_NPROC under the job's real uid (as root) or user namespace (otherwise), with
    its capabilities gone: 3,000 threads do not start."""
    assert matrix["none"]["thread_bomb"] == "harm"
    assert matrix["job"]["thread_bomb"] == "EAGAIN", matrix["job"]


def test_the_tasks_private_files_and_tensor_storage_reach_nothing(matrix):
    """A built-in task's fitness, a private folder beneath a readable one, and torch's
    storage-from-file (read, and create-and-write): Landlock refuses the reads, seccomp or
    Landlock the write."""
    job = matrix["job"]
    for escape in ("read_private", "read_private_beneath", "storage_read"):
        assert job[escape] == "EACCES", (escape, job)
    assert job["storage_write"] in ("EACCES", "EPERM"), job
    assert matrix["landlock"]["storage_read"] == "EACCES"
    assert matrix["landlock"]["read_private"] == "EACCES"


def test_the_job_set_up_stops_every_escape(matrix):
    assert not [e for e in ESCAPES if matrix["job"][e] == "harm"], matrix["job"]


def test_landlock_alone_keeps_files_safe(matrix):
    landlock = matrix["landlock"]
    for escape in ("write_outside", "write_scratch", "read_secret", "execve"):
        assert landlock[escape] == "EACCES", (escape, landlock)
    if landlock_abi() >= 4:
        assert landlock["connect"] == "EACCES", landlock


def test_seccomp_alone_allows_only_computing(matrix):
    seccomp = matrix["seccomp"]
    for escape in ("write_outside", "write_scratch", "connect", "setns", "fork_outlives", "execve"):
        assert seccomp[escape] == "EPERM", (escape, seccomp)
    assert seccomp["storage_write"] == "EPERM", seccomp
    assert seccomp["read_secret"] == "harm"  # reading is Landlock's to stop


def test_network_namespace_alone_stops_connections(matrix):
    assert matrix["network"]["connect"] in ("ECONNREFUSED", "ENETUNREACH"), matrix["network"]
    if ROOT:  # root keeps CAP_SYS_ADMIN without the capability layer: it can go back
        assert matrix["network"]["setns"] == "harm", matrix["network"]


@pytest.mark.skipif(not ROOT, reason="an unprivileged process has no capability to drop")
def test_dropping_capabilities_alone_stops_setns_for_root(matrix):
    assert matrix["capabilities"]["setns"] == "EPERM", matrix["capabilities"]


def test_training_works_once_confined():
    """SB3 PPO set up, then confined, then trained: the allow-list is enough for real work."""
    code = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "tests")
        import eureka_lab.executors._preload
        from support.tasks import tiny_task_dict
        from eureka_lab.isolation import lockdown
        from eureka_lab.task.load import task_from_dict
        from eureka_lab.trainers import make_trainer, Budget

        task = task_from_dict(tiny_task_dict())
        state = {}
        def load():
            state.update(lockdown.lock_down(lockdown.default_read_paths()))
            return None
        steps = []
        report = make_trainer(task.trainer).train(task, load, Budget(512, 0, 2), lambda s, a: steps.append(s.step))
        assert all(v is True for v in state.values()), state
        print("TRAINED", report.steps, steps)
        """
    )
    threads = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, **threads},  # as a job child: no thread before confinement
    )
    assert "TRAINED 512 [256, 512]" in proc.stdout, proc.stderr[-3000:]


def test_the_probe_sees_every_layer():
    assert lockdown.probe() == dict.fromkeys(lockdown.LAYERS, True)
    caps = probing.capabilities()
    assert probing.weak_layers(caps) == {}, caps


GPU_CHILD = r"""
import errno, fcntl, json, os, sys
from eureka_lab.isolation import lockdown

mode = sys.argv[1]
before = os.open("/dev/zero", os.O_RDONLY)  # as CUDA opens its devices before confinement
devices = ["/dev/zero"] if mode == "gpu" else []  # /dev/zero stands for a GPU's device file
state = lockdown.lock_down(lockdown.default_read_paths(), devices=devices)
assert all(v is True for v in state.values()), state
out = {}


def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))


attempt("nvidia ioctl", lambda: fcntl.ioctl(before, 0xC0104601, bytes(16)))  # _IOWR('F', 1, 16)
attempt("uvm ioctl", lambda: fcntl.ioctl(before, 39, bytes(16)))
attempt("terminal ioctl", lambda: fcntl.ioctl(before, 0x5402, bytes(64)))  # TCSETS: never
attempt("open device rw", lambda: os.close(os.open("/dev/zero", os.O_RDWR)))
attempt("open other rw", lambda: os.close(os.open("/dev/urandom", os.O_RDWR)))
attempt("create file", lambda: os.close(os.open("made-here", os.O_RDWR | os.O_CREAT)))
print(json.dumps(out))
"""


def test_a_gpu_job_keeps_its_device_files_and_the_driver_ioctls_only(tmp_path):
    """With ``devices`` (a job on a GPU), the filter lets the NVIDIA driver's ioctls through
    (the device then answers; /dev/zero, standing in, says ENOTTY) and the device files open
    read-write; other ioctls, other files and creating files stay refused. Without it, the
    same ioctls are refused by seccomp (EPERM)."""

    def run(mode):
        proc = subprocess.run(
            [sys.executable, "-c", GPU_CHILD, mode],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    gpu, cpu = run("gpu"), run("cpu")
    assert gpu["nvidia ioctl"] == gpu["uvm ioctl"] == "ENOTTY"
    assert gpu["open device rw"] == "ok"
    assert gpu["terminal ioctl"] == "EPERM"
    assert gpu["open other rw"] == "EACCES"  # Landlock: read-only there
    assert gpu["create file"] == "EPERM"  # seccomp: read-write, never create
    assert cpu["nvidia ioctl"] == cpu["uvm ioctl"] == cpu["terminal ioctl"] == "EPERM"
    assert cpu["open device rw"] == "EPERM" and cpu["create file"] == "EPERM"
    assert not (tmp_path / "made-here").exists()
