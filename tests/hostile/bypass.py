"""Test-only: run a job with sandbox layers switched OFF, to show the layers behind them hold.

The hostile tests monkeypatch ``eureka_lab.executor._child_main`` in the test process with
``functools.partial(child_main, layers=...)``. The executor pickles that target by reference,
so it runs in the forked job child only (never in the fork server, never in other tests'
jobs), switches the named layers off there, and hands over to the real ``_child_main``:

``policy``    the static AST policy (``check_code`` returns no violations)
``bytecode``  the sandbox's bytecode check (``_bytecode_violations`` returns none)

What is left is what a job would have if those layers had a hole: the restricted builtins,
import and numpy proxy, then the OS layers of :mod:`eureka_lab.limits`.
"""

from __future__ import annotations

import os

MARKER = "bypass.txt"
"""Written into the job folder, so a test can tell the bypass was really in force."""


def child_main(workdir: str, limits, env: dict[str, str], layers: tuple[str, ...]) -> None:
    from eureka_lab import executor, sandbox

    if "policy" in layers:
        sandbox.check_code = lambda code: []
    if "bytecode" in layers:
        sandbox._bytecode_violations = lambda code: []
    with open(os.path.join(workdir, MARKER), "w") as f:
        f.write(",".join(layers))
    executor._child_main(workdir, limits, env)
