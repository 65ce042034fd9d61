"""The notebook API on a real run, the example notebook executed end to end, and the HTML
report opened in a real browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import eureka_lab as el
from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.loop.loop import Loop
from eureka_lab.report.html import write_report
from eureka_lab.report.results import Candidate
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore

from support.answers import good

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<img src=x onerror="window.pwned=1">'


def _answer(body: str) -> str:
    return (
        "A reward.\n\n```python\nimport numpy as np\n\n\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        + "\n".join("    " + line for line in body.strip().splitlines())
        + "\n```"
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, request):
    """Two iterations on the tiny task, with a failure whose reason and a component whose
    name are hostile HTML."""
    from eureka_lab.task.load import task_from_dict

    from support.tasks import tiny_task_dict

    task = task_from_dict(tiny_task_dict(observation_names=["position", "velocity"]))
    answers = [
        good(1.0),
        _answer(f"raise ValueError({HOSTILE!r})"),
        good(2.0),
        _answer(f"r = next_obs[:, 0]\nreturn r, {{{HOSTILE!r}: r}}"),
    ]
    store = RunStore.create(tmp_path_factory.mktemp("runs"), "t", {})
    config = LoopConfig(iterations=2, samples=2, workers=2, repair_rounds=0, final_seeds=2)
    Loop(store, task, config, ScriptedBackend(responses=answers)).run()
    return store.root


@pytest.fixture(scope="module")
def unchanged_dir(tmp_path_factory):
    """A run whose best never changed: iteration 1's answers all fail, so the first best is
    the run's best (the quick start's usual outcome)."""
    from eureka_lab.task.load import task_from_dict

    from support.tasks import tiny_task_dict

    task = task_from_dict(tiny_task_dict(observation_names=["position", "velocity"]))
    broken = _answer("raise ValueError('no')")
    store = RunStore.create(tmp_path_factory.mktemp("runs"), "t", {})
    config = LoopConfig(iterations=2, samples=2, workers=2, repair_rounds=0, final_seeds=2)
    Loop(store, task, config, ScriptedBackend(responses=[good(1.0), broken, broken, broken])).run()
    return store.root


def test_the_run_as_a_frame_and_in_html(run_dir):
    run = el.load_run(run_dir)
    frame = run.to_frame()
    assert list(frame.index) == [c.id for c in run.candidates]
    for col in ("fitness", "success", "status", "stage", "iteration", "parent", "components"):
        assert col in frame.columns
    assert frame.loc["iter_00/cand_01", "status"] == "failed"
    assert frame.loc["iter_00/cand_00", "fitness"] == run.candidate("iter_00/cand_00").fitness
    html = run._repr_html_() + run.best._repr_html_()
    assert "compute_reward" in html and HOSTILE not in html
    assert "&lt;img src=x" in html


def test_diff_and_lineage(run_dir):
    run = el.load_run(run_dir)
    a, b = run.candidate("iter_00/cand_00"), run.candidate("iter_01/cand_00")
    d = el.diff(a, b)
    assert "-    height_scale = 1.0" in d.text and "+    height_scale = 2.0" in d.text
    assert d.added == [] and d.removed == []
    assert d.rescaled == {"height": pytest.approx(2.0, rel=0.2)}  # scale 1.0 -> 2.0
    assert b.based_on == run.iterations[0].best
    assert [c.id for c in run.lineage(b)] == [b.id, run.iterations[0].best]


def test_a_candidate_diffed_with_itself_or_with_the_same_code(unchanged_dir):
    """The notebook's `el.diff(first_best, best)` on a run whose best never changed raised
    `ValueError: empty separator`."""
    run = el.load_run(unchanged_dir)
    first, best = run.candidate(run.iterations[0].best), run.best
    assert first.id == best.id
    d = el.diff(first, best)
    assert d.same and d.text == "" and not (d.added or d.removed or d.rescaled)
    assert str(d) == f"{best.id} diffed with itself: no change"
    assert "diffed with itself: no change" in d._repr_html_()
    twin = Candidate(run.store, run.candidate("iter_01/cand_00").record)
    twin.__dict__["code"] = best.code  # another candidate with the very same code
    same = el.diff(best, twin)
    assert same.same and str(same).startswith(f"{best.id} and iter_01/cand_00 have the same code")
    assert "<pre" in same._repr_html_()


def test_behaviour_reads_well_in_a_terminal_and_in_jupyter(run_dir):
    run = el.load_run(run_dir)
    at = next(c for c in run.best.checkpoints if c.step == run.best.result.best_step)
    b = at.behaviour
    text = repr(b)
    assert str(b) == text and text.startswith(f"Behaviour over {b.episodes} evaluation episodes")
    assert "position: " in text and len(text.splitlines()) <= 10
    for number in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text):
        assert len(number.lstrip("-").replace(".", "").lstrip("0")) <= 3, number  # 3 digits
    html = b._repr_html_()
    assert "What the policy did" in html and "<table>" in html and "tex2jax_ignore" in html


def test_plots_return_figures_and_accept_an_axis(run_dir):
    import matplotlib.pyplot as plt

    run = el.load_run(run_dir)
    for fig in (run.plot_fitness(), run.best.plot_components(), run.plot_final()):
        assert fig.axes and fig.axes[0].get_title()
    fig, ax = plt.subplots()
    assert run.plot_fitness(ax=ax) is fig


def _execute_notebook(run_path: Path, cwd: Path) -> list:
    """Run examples/inspect_run.ipynb on ``run_path``; its code cells' outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "examples" / "inspect_run.ipynb", as_version=4)
    os.environ["EUREKA_RUN"] = str(run_path)
    try:
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    finally:
        del os.environ["EUREKA_RUN"]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("which", ["best changed", "best never changed"])
def test_the_example_notebook_runs(run_dir, unchanged_dir, tmp_path, which):
    outputs = _execute_notebook(run_dir if which == "best changed" else unchanged_dir, tmp_path)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "What the policy did" in html  # the behaviour, readable
    if which == "best never changed":
        assert "diffed with itself: no change" in html


@pytest.mark.slow
def test_the_example_notebook_runs_on_a_real_quick_start_run(tmp_path):
    """The README's quick start, smaller: MountainCar with the offline backend, two
    iterations, then the notebook on it."""
    run = el.run(
        "mountain_car_fuel",
        iterations=2,
        samples=2,
        timesteps=6000,
        final_seeds=2,
        race_seeds=2,
        workers=2,
        runs_dir=tmp_path / "runs",
        llm="offline",
    )
    assert run.finished
    _execute_notebook(run.path, tmp_path)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_the_report_in_a_real_browser(run_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    out = write_report(run_dir, tmp_path / "report.html")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(out.resolve().as_uri())
        text = page.inner_text("body")
        images = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        pwned = page.evaluate("window.pwned")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert "compute_reward" in text and "Final comparison" in text
    best = el.load_run(run_dir).best.code or ""
    scale = next(line.strip() for line in best.splitlines() if "height_scale =" in line)
    assert scale in text  # the best reward's code
    assert "What its policy did" in text and "position" in text  # the behaviour summary
    assert len(images) >= 3 and all(w > 0 for w in images)  # every plot loaded
    assert HOSTILE in text and pwned is None  # shown as text, never run
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.parametrize("embed", [False, True])
def test_videos_are_linked_or_embedded_where_present(run_dir, tmp_path, embed):
    store = RunStore.open(run_dir)
    store.save_video("iter_00/cand_00", b"\x00\x00\x00\x18ftypmp42 not a real video")
    try:
        out = write_report(run_dir, tmp_path / "r.html", embed_videos=embed)
        page = out.read_text()
        assert page.count("<video") == 1
        if embed:
            assert 'src="data:video/mp4;base64,' in page
        else:
            src = page.split("<video")[1].split('src="')[1].split('"')[0]
            assert (out.parent / src).resolve() == store.video_path("iter_00/cand_00")
    finally:
        store.video_path("iter_00/cand_00").unlink()
