"""Answers that once crashed the orchestrator itself, with no escape needed: a deep
expression, a lone surrogate or rich markup in a failure reason or a component name, a
10 MB component name. The run finishes, and `show` and `resume` work."""

from __future__ import annotations

from rich.console import Console

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.cli import main
from eureka_lab.loop.loop import Loop
from eureka_lab.report.show import show_run
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore

from support.answers import good


def _answer(body: str) -> str:
    return (
        "```python\nimport numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        + "\n".join("    " + line for line in body.strip().splitlines())
        + "\n```"
    )


DEEP_SUM = _answer("x = next_obs[:, 0]\nr = " + " + ".join(["x"] * 1000) + '\nreturn r, {"r": r}')
SURROGATE_REASON = _answer('raise ValueError("bad \\ud800 value")')
MARKUP_REASON = _answer('raise ValueError("[/oops] [bold]not markup[/bold]")')
SURROGATE_NAME = _answer('r = next_obs[:, 0]\nreturn r, {"height\\ud800": r}')
HUGE_NAME = _answer('r = next_obs[:, 0]\nreturn r, {"n" * 10_000_000: r}')
ESCAPES = _answer('raise ValueError("\\x1b[31mred\\x1b[0m \\x07 bell")')


def test_hostile_answers_do_not_take_the_run_down(tmp_path, tiny_task, capsys):
    answers = [DEEP_SUM, SURROGATE_REASON, MARKUP_REASON, SURROGATE_NAME, HUGE_NAME, ESCAPES]
    backend = ScriptedBackend(responses=[*answers, good(1.0)])
    store = RunStore.create(tmp_path, "t", {"task": tiny_task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=len(answers) + 1, workers=2, repair_rounds=0)
    events: list[dict] = []
    summary = Loop(store, tiny_task, config, backend, reporter=events.append).run()
    assert summary.best is not None

    by_id = {c.id: c for c in store.candidates()}
    for i in range(1, len(answers)):
        cand = by_id[f"iter_00/cand_{i:02d}"]
        assert cand.status == "failed", cand
        assert "\ud800" not in (cand.reason or "") and "\x1b" not in (cand.reason or "")
        assert len(cand.reason) < 5000
    assert "[/oops]" in by_id["iter_00/cand_02"].reason  # shown as text, not markup
    assert "64" in by_id["iter_00/cand_04"].reason  # the name limit, named
    # The run folder stays small whatever the candidates returned.
    size = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    assert size < 5_000_000, size

    console = Console(record=True, width=200)
    show_run(store, console)
    text = console.export_text()
    assert "[/oops]" in text and "final comparison" in text
    # The CLI's show and resume go through the same records.
    assert main(["show", str(store.root)]) == 0
    assert main(["resume", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "[/oops]" in out and "\x1b[31m" not in out
