"""Preference-driven iterations without people: the oracle (ICPL's synthetic person) ranks
by the hidden score with settable noise and mistakes, every ranking is recorded as a
preference query, and the next prompt is built from the most and least preferred (ICPL)
without showing the task score."""

from __future__ import annotations

import pytest

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.core.errors import ConfigError
from eureka_lab.loop.loop import Loop
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Candidate, Ranking, TrainingResult
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.oracle import OracleSelector
from eureka_lab.task.load import task_from_dict

from support.answers import good
from support.tasks import tiny_task_dict


def _trained(scores):
    return [
        Trained(
            Candidate(id=f"iter_00/cand_{i:02d}", iteration=0, index=i),
            TrainingResult(status="trained", fitness=f),
        )
        for i, f in enumerate(scores)
    ]


def test_the_oracle_without_noise_ranks_by_the_hidden_score():
    ranking = OracleSelector().rank(_trained([0.1, 0.7, 0.4]))
    assert ranking == [["iter_00/cand_01"], ["iter_00/cand_02"], ["iter_00/cand_00"]]


def test_the_oracles_mistakes_swap_best_and_worst():
    ranking = OracleSelector(mistakes=1.0).rank(_trained([0.1, 0.7, 0.4]))
    assert ranking == [["iter_00/cand_00"], ["iter_00/cand_02"], ["iter_00/cand_01"]]


def test_the_oracles_noise_blurs_close_scores_but_not_far_ones():
    far = [OracleSelector(seed=s, noise=0.05).rank(_trained([0.0, 1.0]))[0] for s in range(20)]
    assert far == [["iter_00/cand_01"]] * 20
    close = {OracleSelector(seed=s, noise=5.0).rank(_trained([0.0, 1.0]))[0][0] for s in range(20)}
    assert close == {"iter_00/cand_00", "iter_00/cand_01"}


@pytest.mark.parametrize("options", [{"noise": -1.0}, {"mistakes": 1.5}])
def test_impossible_oracle_settings_are_refused(options):
    with pytest.raises(ConfigError, match="oracle noise"):
        OracleSelector(**options)


def test_a_ranking_expands_into_pairwise_comparisons():
    r = Ranking(
        annotator="a", time=0.0, iteration=0, candidates=["x", "y", "z"], order=[["x"], ["y", "z"]]
    )
    assert r.pairs() == [("x", "y"), ("x", "z")]


def test_an_oracle_run_records_its_queries_and_prompts_with_best_and_worst(tmp_path):
    (tmp_path / "score.py").write_text(
        "def furthest(episode):\n    return float(episode.observations[:, 0].max())\n"
    )
    task = task_from_dict(tiny_task_dict(fitness="score:furthest", source_dir=str(tmp_path)))
    backend = ScriptedBackend(responses=[good(1.0), good(9.0), good(3.0), good(5.0)])
    store = RunStore.create(tmp_path / "runs", "oracle", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=2,
        samples=2,
        workers=2,
        final_seeds=1,
        selection="oracle",
        feedback="preference",
    )
    summary = Loop(store, task, config, backend).run()

    rankings = store.rankings()
    assert [r.iteration for r in rankings] == [0, 1, 1]  # iteration 1: its own, then vs the run's
    assert all(r.annotator == "oracle" for r in rankings)
    first = rankings[0]
    fitness = {c: store.result(c).fitness for c in first.candidates}
    assert first.order[0][0] == max(fitness, key=fitness.get)  # no noise: the hidden order
    assert summary.preference_queries == 3
    assert store.iteration(0).best == first.order[0][0]

    prompt = backend.prompts[1].messages[-1].content  # iteration 1 (no repairs were asked)
    worst = first.order[-1][0]
    assert "most preferred" in prompt and f"The least preferred ({worst})" in prompt
    assert store.reward_code(worst).strip().splitlines()[0] in prompt
    assert "task score" not in prompt  # a person's preference replaces the hidden score


def test_a_person_at_the_terminal_ranks_and_critiques(tmp_path, monkeypatch, capsys):
    """--feedback text: the candidates are listed, the person types the best, the worst and a
    critique; the ranking is stored and the next prompt carries the critique."""
    from support.doubles import register

    register()
    answers = iter(["7", "2", "1", "spins in place, make it move forward", "1", "", "", "A", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    task = task_from_dict(tiny_task_dict(trainer={"name": "fake"}))
    backend = ScriptedBackend(responses=[good(1.0), good(2.0), good(3.0), good(4.0)])
    store = RunStore.create(tmp_path, "text", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=2, samples=2, executor="inline", selection="text", feedback="preference"
    )
    Loop(store, task, config, backend).run()
    out = capsys.readouterr().out
    assert "1. iter_00/cand_00" in out and "2. iter_00/cand_01" in out
    assert "please answer one of: 1, 2" in out  # "7" was refused
    first = store.rankings()[0]
    assert first.annotator == "person (terminal)"
    assert first.order == [["iter_00/cand_01"], ["iter_00/cand_00"]]
    assert first.overall == "spins in place, make it move forward"
    assert '"spins in place, make it move forward"' in backend.prompts[1].messages[-1].content


def test_a_task_without_fitness_is_judged_only_by_a_person(tmp_path, monkeypatch, capsys):
    from support.doubles import register

    register()
    task = task_from_dict(tiny_task_dict(trainer={"name": "fake"}, fitness="none"))
    store = RunStore.create(tmp_path, "judged", {"task": task.model_dump(mode="json")})
    with pytest.raises(ConfigError, match="has no fitness.*--selection human.*--selection text"):
        Loop(store, task, LoopConfig(executor="inline"), ScriptedBackend())
    # iteration 0: 2 over 1; the final videos, blind: A over B
    answers = iter(["2", "1", "it hops, good", "1", "A", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    config = LoopConfig(
        iterations=1,
        samples=2,
        executor="inline",
        selection="text",
        feedback="preference",
        final_seeds=1,
    )
    summary = Loop(store, task, config, ScriptedBackend(responses=[good(1.0), good(2.0)])).run()
    assert store.result("iter_00/cand_00").fitness is None  # nothing scored it
    assert store.iteration(0).best == "iter_00/cand_01"
    assert summary.best == "iter_00/cand_01" and summary.final["best"].fitness is None
    final = store.rankings()[-1]
    assert sorted(final.candidates) == ["final/best/seed_1000", "final/human/seed_1000"]
    assert final.labels is not None and final.order == [[final.labels["A"]], [final.labels["B"]]]
    expected = "best" if final.labels["A"] == "final/best/seed_1000" else "human"
    assert summary.verdict == expected and summary.preference_queries == 2
    out = capsys.readouterr().out
    asked = out[out.index("Final verdict: which of these two policies better does the task?") :]
    shown = asked[: asked.index(" was the ")]  # what the person saw before answering
    assert "  A: no video" in shown and "  B: no video" in shown
    assert "final/" not in shown and "seed_1000" not in shown
    assert f"A was the {'run' if expected == 'best' else 'task'}" in asked
