"""Test-only: run a job with sandbox layers switched OFF, to show the layers behind them hold.

The hostile tests monkeypatch ``eureka_lab.executors.child.main`` in the test process with
``functools.partial(child_main, layers=...)``. The executor pickles that target by reference,
so it runs in the forked job child only (never in the fork server, never in other tests'
jobs), switches the named layers off there, and hands over to the real ``main``:

``policy``     the static AST policy (``check_code`` returns no violations)
``bytecode``   the sandbox's bytecode check (``_bytecode_violations`` returns none)
``namespace``  the restricted namespace: reward code gets the real builtins and ``import``
``python``     all three: every Python layer off

What is left is what a job would have if those layers had a hole: the OS layers of
:mod:`eureka_lab.isolation.limits` and :mod:`eureka_lab.isolation.lockdown`.
"""

from __future__ import annotations

import builtins
import os

MARKER = "bypass.txt"
"""Written into the job's scratch folder, and into ``marker_dir`` (one file per job) when
given, so a test can tell the bypass was in force."""
PYTHON_LAYERS = ("policy", "bytecode", "namespace")


def child_main(
    spec,
    conn,
    scratch: str,
    limits,
    env: dict[str, str],
    allow_weak: bool = False,
    cpus: tuple[int, ...] = (),
    gpu: bool = False,
    *,
    layers: tuple[str, ...],
    marker_dir: str | None = None,
):
    from eureka_lab.executors import child as executor
    from eureka_lab.reward import loader as sandbox

    if "python" in layers:
        layers = PYTHON_LAYERS
    if "policy" in layers:
        sandbox.check_code = lambda code: []
    if "bytecode" in layers:
        sandbox._bytecode_violations = lambda code: []
    if "namespace" in layers:
        sandbox._safe_builtins = lambda modules=None: dict(vars(builtins))
    for folder in (scratch, marker_dir):
        if folder is not None:
            with open(os.path.join(folder, f"{MARKER}.{os.getpid()}"), "w") as f:
                f.write(",".join(layers))
    executor.main(spec, conn, scratch, limits, env, allow_weak, cpus, gpu)
