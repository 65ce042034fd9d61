"""The match-class escape that got past every Python layer, and the class of holes it came
from: each Python layer is shown to stop it, the restricted namespace alone is shown NOT to,
and the OS layers stop its harm with every Python check switched off."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from eureka_lab.core.errors import ContractError
from eureka_lab.executors import local as executor
from eureka_lab.executors.base import Job
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.reward import loader as sandbox
from eureka_lab.reward.check import check_code
from eureka_lab.task.load import task_from_dict

from conftest import tiny_task_dict

CHAIN = (Path(__file__).parent / "hostile" / "match_chain.py").read_text()


def chain(folder: Path) -> str:
    return CHAIN.replace("WATCH", repr(str(folder)))


def _call(fn):
    obs = np.zeros((2, 2))
    return sandbox.call_reward(fn, obs, np.zeros(2, dtype=np.int64), obs.copy(), {})


def test_the_restricted_namespace_alone_does_not_hold(tmp_path, monkeypatch):
    """Why the Python layers are a filter: with only the restricted builtins, import and
    numpy proxy in place, the chain reaches the real builtins and writes a file."""
    monkeypatch.setattr(sandbox, "_bytecode_violations", lambda code: [])
    _call(sandbox._exec_reward(chain(tmp_path)))
    assert (tmp_path / "pwned_chain.txt").read_text() == "escaped"


def test_the_bytecode_check_stops_it(tmp_path):
    with pytest.raises(ContractError, match="`match` class patterns") as err:
        sandbox._exec_reward(chain(tmp_path))  # no static policy here
    assert "`__dict__` (as a constant)" in str(err.value)
    assert not (tmp_path / "pwned_chain.txt").exists()


def test_the_static_policy_stops_it(tmp_path):
    violations = check_code(chain(tmp_path))
    assert any("[match-class]" in v for v in violations)
    assert any("dunder/mangled name `__dict__`" in v for v in violations)


@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        ("case ValueError(__dict__=d):", "dunder"),
        ("case ValueError(__traceback__=d):", "dunder"),
        ("case ValueError(_private=d):", "private-attribute"),
        ("case ValueError(tb_frame=d):", "attribute"),
        ("case ValueError(args=d):", "match-class"),
        ("case {'k': d, **__rest}:", "dunder"),
        ("case [*__star]:", "dunder"),
        ("case __capture:", "dunder"),
    ],
)
def test_no_syntax_names_a_dunder_or_private_attribute(pattern, rule):
    body = f"""
import numpy as np


def compute_reward(obs, action, next_obs, info):
    match obs:
        {pattern}
            pass
    r = next_obs[:, 0]
    return r, {{"r": r}}
"""
    assert any(f"[{rule}]" in v for v in check_code(body)), check_code(body)


def test_keyword_arguments_and_globals_are_covered_by_the_same_rule():
    code = (
        "import numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        "    r = np.sum(next_obs, axis=1, __x=1)\n    return r, {'r': r}\n"
    )
    assert any("[dunder]" in v for v in check_code(code))


@pytest.mark.oslayers
def test_with_every_python_check_off_the_os_stops_the_harm(tmp_path, monkeypatch):
    """The static policy and the bytecode check switched off in the job: the chain escapes
    the restricted namespace, reaches the real `open`, and the OS refuses the write."""
    from hostile import bypass

    monkeypatch.setattr(
        executor, "_child_main", functools.partial(bypass.child_main, layers=("policy", "bytecode"))
    )
    watch = tmp_path / "watched"
    watch.mkdir()
    task = task_from_dict(tiny_task_dict())
    spec = JobSpec("validate", task.model_dump(mode="json"), chain(watch))
    out = LocalExecutor(1).run([Job("chain", spec, 60.0)])["chain"]
    assert out.result is not None and out.result["ok"] is False, out
    assert "PermissionError" in out.result["reason"], out.result["reason"]
    assert not (watch / "pwned_chain.txt").exists()
