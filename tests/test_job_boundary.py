"""What a real job can reach once confined, with every Python layer switched off in the child
(``support/bypass.py``: real builtins, real import), so that only the OS layers stand: the
red team's attacks on descriptors, the task's private files and the environment, run
through the real executor.

Runs as root in CI, and again as an unprivileged user (``.ci/run``, marker ``oslayers``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eureka_lab.core.files import data_dir
from eureka_lab.executors import child as executor
from eureka_lab.executors.base import Job
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.task.load import load_task_file

pytestmark = pytest.mark.oslayers

SECRET = "FITNESS-SECRET-5d1e"


def _bypass_python_layers(monkeypatch, markers: Path) -> None:
    from support import bypass

    markers.mkdir(exist_ok=True)
    monkeypatch.setattr(
        executor,
        "main",
        functools.partial(bypass.child_main, layers=("python",), marker_dir=str(markers)),
    )


def _reward(body: str) -> str:
    """A reward that runs ``body`` on its first call, then raises ``REPORT`` + the dict
    ``seen`` as JSON: the job's failure reason carries it back."""
    return (
        "import json, os\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        "    seen = {}\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n    raise ValueError('REPORT' + json.dumps(seen))\n"
    )


def _seen(reason: str) -> dict:
    match = re.search(r"REPORT(\{.*\})", reason, re.DOTALL)
    assert match, reason
    return json.loads(match.group(1))


def _run(task, code: str, private: tuple[str, ...] = ()) -> str:
    spec = JobSpec("validate", task.model_dump(mode="json"), code, private=private)
    out = LocalExecutor(1).run([Job("probe", spec, 120)])["probe"]
    assert out.result is not None, (out.reason, out.log_tail)
    assert out.result["ok"] is False, out.result
    return out.result["reason"]


# ----------------------------------------------------------------------------- descriptors


def test_a_locked_down_job_holds_only_its_channel_and_standard_streams(
    tiny_task, tmp_path, monkeypatch
):
    """Before the fix the job inherited the fork server's pipes, among them the write end of
    multiprocessing's resource tracker (an unconfined root process that unlinks whatever a
    REGISTER line names)."""
    _bypass_python_layers(monkeypatch, tmp_path / "jobs")
    reason = _run(
        tiny_task,
        _reward(
            """
            for fd in os.listdir('/proc/self/fd'):
                try:
                    seen[fd] = os.readlink('/proc/self/fd/' + fd)
                except OSError:
                    pass  # the listing's own descriptor, gone
            """
        ),
    )
    fds = {int(fd): target for fd, target in _seen(reason).items()}
    fds = {fd: t for fd, t in fds.items() if not t.startswith("/proc/")}
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] and fds[1].endswith("job.log")
    others = {fd: t for fd, t in fds.items() if fd > 2}
    assert len(others) == 1 and next(iter(others.values())).startswith("pipe:"), fds


# ----------------------------------------------------------------------------- private files

ENV_MODULE = """
from gymnasium.envs.classic_control.mountain_car import MountainCarEnv


class Car(MountainCarEnv):
    pass
"""

TASK_MODULE = f"""
SECRET = "{SECRET}"


def fitness(episode):
    return float(episode.observations[-1, 0])


def human(obs, action, next_obs, info):
    h = next_obs[:, 0]
    return h, {{"height": h}}
"""


@pytest.fixture
def private_task(tmp_path):
    folder = tmp_path / "my_task"
    (folder / "assets").mkdir(parents=True)
    (folder / "car_env.py").write_text(ENV_MODULE)
    (folder / "scoring.py").write_text(TASK_MODULE)
    (folder / "assets" / "terrain.txt").write_text("readable asset")
    (folder / "notes.txt").write_text(SECRET)
    (folder / "task.yaml").write_text(
        textwrap.dedent(
            """
            name: private_car
            env_id: car_env:Car
            max_episode_steps: 50
            description: Drive up the hill.
            fitness: scoring:fitness
            human_reward: scoring:human
            timesteps: 512
            eval_episodes: 1
            checkpoints: 1
            trainer: {name: sb3, n_envs: 2, n_steps: 64, batch_size: 64, n_epochs: 1}
            job_files: [assets]
            """
        )
    )
    return load_task_file(folder / "task.yaml")


def test_a_job_reads_the_env_it_needs_and_none_of_the_tasks_private_files(
    private_task, tmp_path, monkeypatch
):
    """Before the fix Landlock granted the task's whole folder (and the built-in tasks): a
    reward read the fitness module and raised its text, which the repair prompt then
    carried to the model."""
    _bypass_python_layers(monkeypatch, tmp_path / "jobs")
    folder = Path(private_task.source_dir)
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "other.py").write_text(SECRET)
    targets = {
        "fitness": folder / "scoring.py",
        "notes": folder / "notes.txt",
        "builtin_fitness": data_dir("envs") / "hopper.py",
        "run_folder": run / "other.py",
        "env_module": folder / "car_env.py",
        "job_file": folder / "assets" / "terrain.txt",
    }
    paths = {k: str(v) for k, v in targets.items()}
    reason = _run(
        private_task,
        _reward(
            f"""
            import torch
            for name, path in {paths!r}.items():
                try:
                    seen[name] = 'read ' + open(path).read()[:40]
                except OSError as e:
                    seen[name] = type(e).__name__
                try:
                    size = os.stat(path).st_size
                    s = torch.UntypedStorage.from_file(path, False, size)
                    seen[name + '_storage'] = 'read ' + bytes(s[:40]).decode()
                except Exception as e:
                    seen[name + '_storage'] = type(e).__name__
            """
        ),
        private=(str(run),),
    )
    assert SECRET not in reason and "def fitness" not in reason, reason
    seen = _seen(reason)
    for name in ("fitness", "notes", "builtin_fitness", "run_folder"):
        assert seen[name] == "PermissionError", (name, seen)
        assert not seen[name + "_storage"].startswith("read"), (name, seen)
    assert seen["env_module"].startswith("read"), seen
    assert seen["job_file"] == "read readable asset", seen


def test_the_tasks_own_env_module_beside_it_builds_the_env(private_task):
    env = private_task.make_env()
    assert type(env.unwrapped).__name__ == "Car"
    assert private_task.job_readable() == [
        Path(private_task.source_dir) / "assets",
        Path(private_task.source_dir) / "car_env.py",
    ]


# ----------------------------------------------------------------------------- environment

ENV_CHILD = r"""
import functools, json, sys
sys.path.insert(0, "tests")
from support import bypass
from eureka_lab.executors import child as executor
from eureka_lab.executors.base import Job
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.task.load import task_from_dict
from eureka_lab.executors.job import JobSpec
from support.tasks import tiny_task_dict

executor.main = functools.partial(bypass.child_main, layers=("python",))
code = '''
import json, os
def compute_reward(obs, action, next_obs, info):
    raw = open('/proc/self/environ', 'rb').read().decode(errors='replace')
    raise ValueError('REPORT' + json.dumps({'environ': dict(os.environ), 'raw': raw}))
'''
task = task_from_dict(tiny_task_dict())
spec = JobSpec("validate", task.model_dump(mode="json"), code)
out = LocalExecutor(1).run([Job("env", spec, 120)])["env"]
print(json.dumps(out.result))
"""

LEAKS = {
    "DATABASE_URL": "postgres://admin:pw-db-LEAKQX@db/prod",
    "HTTPS_PROXY": "http://user:pw-proxy-LEAKQX@proxy:3128",
    "GH_PAT": "ghp_patLEAKQX",
    "OPENAI_API_KEY": "sk-keyLEAKQX",
    "SOME_CONFIG": "configLEAKQX",
}


def test_a_job_sees_only_allow_listed_environment_variables():
    """Before the fix the job got the parent's environment minus names that look secret:
    DATABASE_URL, HTTPS_PROXY and GH_PAT reached it. Checked in a fresh orchestrator
    process, so that its fork server starts with these variables set."""
    env = {**os.environ, **LEAKS, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", ENV_CHILD],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    seen = _seen(result["reason"])
    assert "LEAKQX" not in result["reason"], result["reason"]
    assert not set(LEAKS) & set(seen["environ"]), seen["environ"]
    assert "PATH" in seen["environ"] and seen["environ"]["HOME"] != os.environ.get("HOME")
