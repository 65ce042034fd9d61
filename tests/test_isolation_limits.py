"""Each test starts a tiny ``python -c`` child under the limits and checks that the limit
bites, and, where it means something, that the same child without the limits does not."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from eureka_lab.core.errors import RunError
from eureka_lab.isolation.limits import NOBODY, Limits, MiB, child_env, preexec, prepare_workdir
from eureka_lab.isolation.probing import LAYERS, capabilities, describe, supported

# Rlimit tests run as the current user: the interpreter may sit where nobody cannot reach it.
KEEP_UID = Limits(drop_privileges=False)
IS_ROOT = os.geteuid() == 0


def _python_for_nobody() -> str | None:
    """An interpreter that a child switched to uid nobody can run, if there is one."""
    for python in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(python) and capabilities(python)["privileges"] is True:
            return python
    return None


NOBODY_PYTHON = _python_for_nobody()


@pytest.fixture
def workdir():
    # Not tmp_path: pytest's base folder is often mode 0700, which keeps nobody out.
    path = tempfile.mkdtemp(prefix="eureka-limits-test-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def run_child(
    code: str,
    limits: Limits | None,
    workdir: Path,
    python: str = sys.executable,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as the parent would (limits=None: with no sandbox at all)."""
    if limits is None:  # still in a throwaway folder, never the repository
        unsandboxed = Path(tempfile.mkdtemp(prefix="eureka-unsandboxed-"))
        return subprocess.run(
            [python, "-c", code], cwd=unsandboxed, capture_output=True, text=True, timeout=timeout
        )
    work = prepare_workdir(workdir, limits)
    return subprocess.run(
        [python, "-c", code],
        cwd=work,
        env=child_env(work),
        preexec_fn=preexec(limits, work),
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _require_drop() -> str:
    caps = capabilities()
    if NOBODY_PYTHON is None:
        # Not silent: say what capabilities() reports, which is what a run would print.
        assert isinstance(caps["privileges"], str)
        pytest.skip(f"privilege drop unavailable: {caps['privileges']}")
    return NOBODY_PYTHON


def test_memory_limit_stops_allocation(workdir):
    limits = Limits(memory_bytes=512 * MiB, drop_privileges=False)
    code = (
        "b = bytearray(2 * 512 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('got it')"
    )
    limited = run_child(code, limits, workdir)
    assert "got it" not in limited.stdout
    assert limited.returncode != 0
    assert "MemoryError" in limited.stderr or limited.returncode < 0
    assert capabilities()["memory"] is True


def test_memory_control_without_limit(workdir):
    code = "b = bytes(2 * 512 * 1024 * 1024); print('got it')"  # calloc: pages stay untouched
    assert "got it" in run_child(code, None, workdir).stdout


def test_cpu_limit_kills_busy_loop(workdir):
    limits = Limits(cpu_seconds=1, drop_privileges=False)
    proc = run_child("while True: pass", limits, workdir, timeout=20)
    assert proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL), proc
    assert capabilities()["cpu"] is True


def test_file_size_limit(workdir):
    limits = Limits(file_size_bytes=1 * MiB, drop_privileges=False)
    code = (
        "import errno\n"
        "try:\n"
        "    with open('big.bin', 'wb') as f:\n"
        "        f.write(b'x' * (2 * 1024 * 1024))\n"
        "    print('wrote it')\n"
        "except OSError as e:\n"
        "    print(errno.errorcode[e.errno])\n"
    )
    proc = run_child(code, limits, workdir)
    # Python ignores SIGXFSZ, so the write fails with EFBIG; a C child would get the signal.
    assert "EFBIG" in proc.stdout or proc.returncode == -signal.SIGXFSZ, proc
    assert (workdir / "big.bin").stat().st_size <= 1 * MiB


CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3).close()\n"
    "    print('reached')\n"
    "except OSError as e:\n"
    "    print('blocked', e)\n"
)


def test_network_isolation_hides_host_loopback(workdir):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        code = CONNECT.replace("sys.argv[1]", port)
        assert "reached" in run_child(code, None, workdir).stdout  # the test means something
        sandboxed = run_child(code, KEEP_UID, workdir).stdout
        opted_out = run_child(code, Limits(network=True, drop_privileges=False), workdir).stdout
    assert "reached" in opted_out
    caps = capabilities()
    if caps["network"] is True:
        assert "blocked" in sandboxed
    else:  # capabilities() must say so, and the child must then indeed reach the host
        # The only acceptable reason is the OS refusing the namespace, not a silent skip.
        assert "not permitted here" in caps["network"] or "libc" in caps["network"]
        assert "reached" in sandboxed
        assert "NOT isolated" in describe(caps)


def test_privilege_drop_protects_files_outside_workdir(workdir):
    python = _require_drop()
    protected = Path(tempfile.mkdtemp(prefix="eureka-protected-"))
    try:
        protected.chmod(0o755)
        code = (
            "import os, sys, tempfile\n"
            "tempfile.mkstemp()\n"  # TMPDIR is inside the workdir and writable
            "open('mine.txt', 'w').write('ok')\n"
            "try:\n"
            "    open(os.path.join(sys.argv[1], 'evil.txt'), 'w').write('x')\n"
            "    print('wrote', os.getuid())\n"
            "except PermissionError:\n"
            "    print('denied', os.getuid())\n"
        ).replace("sys.argv[1]", repr(str(protected)))
        dropped = run_child(code, Limits(), workdir, python=python)
        assert dropped.stdout.split() == ["denied", str(NOBODY)], dropped
        assert (workdir / "mine.txt").read_text() == "ok"
        unsandboxed = run_child(code, None, workdir, python=python)
        assert unsandboxed.stdout.split()[0] == "wrote", unsandboxed
    finally:
        shutil.rmtree(protected, ignore_errors=True)


FORK_LOOP = (
    "import os, time\n"
    "pids = []\n"
    "try:\n"
    "    for _ in range(200):\n"
    "        pid = os.fork()\n"
    "        if pid == 0:\n"
    "            time.sleep(30)\n"
    "            os._exit(0)\n"
    "        pids.append(pid)\n"
    "    print('forked', len(pids))\n"
    "except BlockingIOError:\n"
    "    print('stopped', len(pids))\n"
    "finally:\n"
    "    for p in pids:\n"
    "        os.kill(p, 9)\n"
    "        os.waitpid(p, 0)\n"
)


def test_max_processes_stops_fork_loop(workdir):
    if not IS_ROOT:
        # As an ordinary user RLIMIT_NPROC applies without a uid switch, but it counts all
        # of this user's processes, so a small limit would hit the test runner itself.
        pytest.skip("run as root to test RLIMIT_NPROC under the uid switch")
    python = _require_drop()
    proc = run_child(FORK_LOOP, Limits(max_processes=16), workdir, python=python)
    word, count = proc.stdout.split()
    assert word == "stopped" and int(count) < 16, proc


THREAD_BOMB = (
    "import threading\n"
    "threading.stack_size(65536)\n"
    "stop, n = threading.Event(), 0\n"
    "try:\n"
    "    for _ in range(3000):\n"
    "        threading.Thread(target=stop.wait).start()\n"
    "        n += 1\n"
    "except RuntimeError:\n"
    "    pass\n"
    "stop.set()\n"
    "print('started', n)\n"
)
DROP_CAPABILITIES = (  # what a job's lockdown does before reward code runs
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(38, 1, 0, 0, 0)\n"
    "assert libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()) == 0\n"
)


@pytest.mark.oslayers
def test_a_thread_bomb_is_bounded_whoever_runs_the_job(workdir):
    """The red team started 3,000 threads in one job as root, where RLIMIT_NPROC does not
    bind uid 0. Under the job's limits (keeping the current uid, as a root run whose
    interpreter nobody cannot reach does), a child without capabilities starts at most
    its limit, as root and as an ordinary user; without the limits it starts all 3,000."""
    free = run_child(THREAD_BOMB, None, workdir)
    assert free.stdout.split() == ["started", "3000"], free
    bounded = run_child(DROP_CAPABILITIES + THREAD_BOMB, KEEP_UID, workdir)
    word, count = bounded.stdout.split()
    assert word == "started" and int(count) < KEEP_UID.max_processes, bounded
    assert capabilities()["processes"] is True


@pytest.mark.oslayers
def test_each_job_counts_its_own_threads(workdir, tmp_path):
    """Two children under one limit at once: the first holding most of its threads does not
    starve the second (each has its own count: a real uid of its own as root, a user
    namespace of its own otherwise)."""
    hold = (
        DROP_CAPABILITIES + "import threading, time\nthreading.stack_size(65536)\n"
        "stop = threading.Event()\n"
        "for _ in range(LIMIT - 24):\n    threading.Thread(target=stop.wait).start()\n"
        "print('holding', flush=True)\ntime.sleep(30)\n"
    ).replace("LIMIT", str(KEEP_UID.max_processes))
    work = prepare_workdir(tmp_path / "holder", KEEP_UID)
    holder = subprocess.Popen(
        [sys.executable, "-c", hold],
        cwd=work,
        env=child_env(work),
        preexec_fn=preexec(KEEP_UID, work),
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        second = run_child(
            DROP_CAPABILITIES + THREAD_BOMB.replace("3000", "100"), KEEP_UID, workdir
        )
        assert second.stdout.split() == ["started", "100"], second
    finally:
        holder.kill()
        holder.wait()


def test_child_env_is_an_allow_list(workdir):
    base = {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C.UTF-8",
        "OPENAI_API_KEY": "sk-secret",
        "OPENAI_BASE_URL": "http://127.0.0.1:1",
        "GITHUB_TOKEN": "ghp",
        "DB_PASSWORD": "pw",
        "MY_SECRET": "s",
        "DATABASE_URL": "postgres://admin:pw@db/prod",
        "HTTPS_PROXY": "http://user:pw@proxy:3128",
        "https_proxy": "http://user:pw@proxy:3128",
        "GH_PAT": "ghp_abc",
        "SENTRY_DSN": "https://key@sentry.io/1",
        "CUDA_VISIBLE_DEVICES": "0",
    }
    env = child_env(workdir, base)
    assert set(base) & set(env) == {"PATH", "LC_ALL", "CUDA_VISIBLE_DEVICES"}
    assert env["HOME"] == str(workdir)
    assert env["TMPDIR"].startswith(str(workdir))
    assert env["MPLCONFIGDIR"].startswith(str(workdir))


def test_child_does_not_see_openai_key(workdir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    code = "import os; print(os.environ.get('OPENAI_API_KEY', 'absent'), os.environ['HOME'])"
    proc = run_child(code, KEEP_UID, workdir)
    assert proc.stdout.split() == ["absent", str(workdir)]


def test_capabilities_cover_every_layer_and_are_cached():
    caps = capabilities()
    assert set(caps) == set(LAYERS)
    assert all(v is True or (isinstance(v, str) and v) for v in caps.values())
    assert capabilities() is caps
    lines = describe(caps).splitlines()
    assert [ln.split(":")[0] for ln in lines] == list(LAYERS)


def test_capabilities_match_what_a_dropped_child_gets(workdir):
    """capabilities() is only useful if it tells the truth about the uid switch."""
    if not IS_ROOT:
        assert capabilities()["privileges"].startswith("not running as root")
        return
    for python in {sys.executable, NOBODY_PYTHON or sys.executable}:
        caps = capabilities(python)
        try:
            uid = run_child("import os; print(os.getuid())", Limits(), workdir, python).stdout
        except PermissionError:
            uid = "could not start"
        assert (uid.strip() == str(NOBODY)) == (caps["privileges"] is True), (python, caps)


def test_describe_says_plainly_what_is_off():
    caps = dict.fromkeys(LAYERS, True)
    caps["network"] = "unshare(CLONE_NEWNET) not permitted here (errno EPERM)"
    caps["memory"] = "setrlimit(RLIMIT_AS) failed: not allowed"
    text = describe(caps)
    assert "network: NOT isolated: unshare(CLONE_NEWNET) not permitted here (errno EPERM)" in text
    assert "memory: address space NOT limited: setrlimit(RLIMIT_AS) failed" in text
    assert "privileges: switched to uid/gid 65534" in text
    assert "network: isolated" in describe(dict.fromkeys(LAYERS, True))
    caps["seccomp"] = "libseccomp is not available"
    assert "seccomp: NOT active: libseccomp is not available" in describe(caps)


def test_a_missing_boundary_layer_refuses_the_run_naming_the_flag():
    from eureka_lab.core.errors import SandboxError
    from eureka_lab.isolation.probing import require_strong, weak_layers

    caps = dict.fromkeys(LAYERS, True)
    caps["privileges"] = "not running as root"  # an extra layer: not required
    require_strong(caps, allow_weak=False)
    caps["landlock"] = "Landlock is not available on this kernel"
    assert weak_layers(caps) == {"landlock": "Landlock is not available on this kernel"}
    with pytest.raises(
        SandboxError, match="landlock: Landlock is not available.*--allow-weak-sandbox"
    ):
        require_strong(caps, allow_weak=False)
    require_strong(caps, allow_weak=True)


def test_supported_leaves_out_an_impossible_uid_switch():
    caps = dict.fromkeys(LAYERS, True)
    assert supported(Limits(), caps) == Limits()
    caps["privileges"] = "/root (drwx------) keeps uid 65534 from running python"
    assert supported(Limits(), caps).drop_privileges is (not Limits().drops)


@pytest.mark.skipif(not IS_ROOT, reason="only root switches uid, so only root chowns")
def test_workdir_must_be_reachable_and_owned(workdir):
    workdir.chmod(0o755)
    hidden = workdir / "private"
    hidden.mkdir(mode=0o700)
    with pytest.raises(RunError, match="cannot enter"):
        prepare_workdir(hidden / "candidate", Limits())
    plain = workdir / "plain"
    plain.mkdir()
    with pytest.raises(RunError, match="prepare_workdir"):
        preexec(Limits(), plain)
    assert prepare_workdir(plain, Limits()).stat().st_uid == NOBODY


def test_refused_layer_is_reported_and_child_goes_on(workdir, monkeypatch):
    import eureka_lab.isolation.limits as limits_module

    monkeypatch.setattr(limits_module, "_libc", lambda: None)  # as if unshare() were missing
    proc = run_child("print('ran')", KEEP_UID, workdir)
    assert proc.stdout.strip() == "ran"
    assert "eureka-lab sandbox: network NOT applied: libc could not be loaded" in proc.stderr


def test_a_weak_sandbox_is_announced_loudly_at_the_start_of_a_run():
    from eureka_lab.report.terminal import describe_event

    layers = describe(dict.fromkeys(LAYERS, True)).splitlines()
    assert describe_event({"event": "sandbox", "layers": layers}) is None
    caps = dict.fromkeys(LAYERS, True)
    caps["landlock"] = "Landlock is not available on this kernel"
    text = describe_event({"event": "sandbox", "layers": describe(caps).splitlines()})
    assert "WARNING sandbox: landlock: NOT active: Landlock is not available" in text
    assert "--allow-weak-sandbox" in text
