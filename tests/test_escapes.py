"""The match-class escape that got past every Python layer, and the class of holes it came
from: each Python layer is shown to stop it, the restricted namespace alone is shown NOT to,
and the OS layers stop its harm with every Python check switched off."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import pytest

import eureka_lab as el
from eureka_lab.core.errors import ContractError
from eureka_lab.executors import child as executor
from eureka_lab.executors.base import Job
from eureka_lab.executors.job import JobSpec
from eureka_lab.executors.local import LocalExecutor
from eureka_lab.reward import loader as sandbox
from eureka_lab.reward.check import check_code
from eureka_lab.task.load import task_from_dict

from support.runs import written_run
from support.tasks import tiny_task_dict

CHAIN = (Path(__file__).parent / "support" / "match_chain.py").read_text()


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
    from support import bypass

    monkeypatch.setattr(
        executor, "main", functools.partial(bypass.child_main, layers=("policy", "bytecode"))
    )
    watch = tmp_path / "watched"
    watch.mkdir()
    task = task_from_dict(tiny_task_dict())
    spec = JobSpec("validate", task.model_dump(mode="json"), chain(watch))
    out = LocalExecutor(1).run([Job("chain", spec, 60.0)])["chain"]
    assert out.result is not None and out.result["ok"] is False, out
    assert "PermissionError" in out.result["reason"], out.result["reason"]
    assert not (watch / "pwned_chain.txt").exists()


# --------------------------------------------------------------------------- plots and views
# Names a candidate (component names) or a shared run folder (the task's name) controls are
# drawn and shown as literal text: matplotlib's mathtext and LaTeX, and the notebook's
# MathJax, never see them as markup.
MARKUP = [r"$\sqrt{$", "$x^{$", "$$", "a$}$b", r"\$$\undefined$"]


def _texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text)]


@pytest.mark.parametrize("name", MARKUP)
def test_component_names_are_literal_text_in_every_plot(tmp_path, name):
    plt = pytest.importorskip("matplotlib.pyplot")
    run = el.load_run(written_run(tmp_path, component=name).root)
    for fig in (run.plot_fitness(), run.best.plot_components(), run.plot_final()):
        fig.savefig(io.BytesIO(), format="png")  # the layout and the drawing parse text
        plt.close(fig)
    assert name in _texts(run.best.plot_components())  # the legend shows it as it is
    plt.close("all")


def test_the_task_name_is_literal_text_and_the_report_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from eureka_lab.report.html import write_report

    store = written_run(tmp_path, task_name="x$^{$", component=r"$\sqrt{$")
    page = write_report(store.root, tmp_path / "report.html").read_text()
    assert "<h1>x$^{$: " in page and r"$\sqrt{$" in page
    assert page.count("data:image/png;base64,") == 4  # fitness, two components, final


def test_an_axis_made_with_usetex_gets_no_latex(tmp_path):
    """A person's own axis, made where `text.usetex` is set: the names still do not go to
    LaTeX (`\\input` reads a file into the picture; here no LaTeX is even installed)."""
    plt = pytest.importorskip("matplotlib.pyplot")
    run = el.load_run(written_run(tmp_path, component=r"\input{/etc/passwd}").root)
    with plt.rc_context({"text.usetex": True}):
        fig, ax = plt.subplots()
        assert run.best.plot_components(ax=ax) is fig
        fig.savefig(io.BytesIO(), format="png")
    assert r"\input{/etc/passwd}" in _texts(fig)
    fig, (ax, theirs) = plt.subplots(1, 2)
    theirs.set_title("$x^2$")
    run.best.plot_components(ax=ax)
    assert theirs.title.get_parse_math()  # the person's other axis keeps their mathtext
    plt.close("all")


def test_notebook_views_are_not_typeset_as_math(tmp_path):
    """Jupyter runs MathJax over HTML output: every view opts out (`tex2jax_ignore`)."""
    pytest.importorskip("pygments")
    run = el.load_run(written_run(tmp_path, component=r"$\sqrt{$").root)
    a, b = run.candidates
    for view in (run, a, el.diff(a, b)):
        assert view._repr_html_().startswith('<div class="tex2jax_ignore">'), view
    assert r"$\sqrt{$" in run._repr_html_() and r"$\sqrt{$" in a._repr_html_()
