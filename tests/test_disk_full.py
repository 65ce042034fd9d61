"""A disk that fills during a run: the run stops with one message naming the full disk and
the fix, leaves no half-written record that would break ``show`` or ``resume``, and
``resume`` finishes it, as an uninterrupted run ends, once there is space again.

The run folder is on a small tmpfs mounted for the test (root, or CAP_SYS_ADMIN); where
mounting is not permitted the test is skipped. Space is "freed" by growing the tmpfs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.runs import KILLPOINTS, REAL, check_whole, records, uninterrupted
from support.tasks import write_task

ARGS = ["--llm", "offline", "--iterations", "2", "--samples", "3", "--final-seeds", "1"]
ARGS += ["--executor", "inline"]


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def resize(disk: Path, kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(disk)], check=True)


def cli(folder: Path, *argv: str) -> subprocess.CompletedProcess:
    """The CLI with the test doubles registered (``support/killpoints.py`` with no moment)."""
    return subprocess.run(
        [sys.executable, str(KILLPOINTS), "{}", *argv],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=280,
    )


def run_on_a_full_disk(folder: Path, disk: Path, args: list[str]) -> Path:
    """Run until the disk is full; check the one message and what is left on the disk."""
    ran = cli(folder, "run", *args, "--runs-dir", str(disk / "runs"))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    (run,) = (disk / "runs").iterdir()
    errors = ran.stderr.strip().splitlines()
    assert len(errors) == 1, ran.stderr
    (error,) = errors
    assert error.startswith(f"error: The disk is full at {run}"), error
    assert "No space left on device" in error
    assert error.endswith(f"Free some space on it, then continue with: eureka-lab resume {run}")
    assert "Traceback" not in ran.stdout

    # Nothing half-written: every record reads whole, and show reads the run.
    for path in run.rglob("*.json"):
        json.loads(path.read_text())
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    shown = cli(folder, "show", str(run))
    assert shown.returncode == 0, shown.stderr
    return run


# The whole run takes about 360 KiB on tmpfs. These fill it while a training reports a
# checkpoint (iteration 0), while candidates are recorded (iteration 1) and while the final
# comparison trains.
@pytest.mark.parametrize("kib", [100, 200, 320])
def test_a_full_disk_stops_the_run_with_one_message_and_resume_finishes_it(
    tmp_path, small_disk, kib
):
    task = write_task(tmp_path, real=False)
    resize(small_disk, kib)
    run = run_on_a_full_disk(tmp_path, small_disk, [str(task), *ARGS])
    resize(small_disk, 64 * 1024)
    resumed = cli(tmp_path, "resume", str(run))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_whole(run, torn_lines=1)
    assert records(run) == uninterrupted(tmp_path / "whole", [str(task), *ARGS])


@pytest.mark.slow
def test_a_full_disk_while_sandboxed_jobs_train(tmp_path, small_disk):
    """The real executor: the disk fills while a job's checkpoint is written; the jobs are
    stopped with the run, and resume finishes it."""
    task = write_task(tmp_path, real=True)
    resize(small_disk, 200)
    run = run_on_a_full_disk(tmp_path, small_disk, [str(task), *REAL])
    resize(small_disk, 64 * 1024)
    resumed = cli(tmp_path, "resume", str(run))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_whole(run, torn_lines=1)
