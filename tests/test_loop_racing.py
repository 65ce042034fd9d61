"""Racing on fresh seeds (eureka_lab/loop/racing.py), and the held-out score it races on:
a reward that won its first seed by luck does not take the run's best, one beaten beyond
noise is out early, and the incumbent is beaten only on equal seeds."""

from __future__ import annotations

import numpy as np
import pytest

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.evaluation.evaluator import choose
from eureka_lab.loop.loop import Loop
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Evaluation
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import task_from_dict

from support.doubles import register, seed_table
from support.tasks import seed_table_task_dict


@pytest.fixture
def table_task():
    register()
    return task_from_dict(seed_table_task_dict())


def _answer(code: str) -> str:
    return f"An idea.\n\n```python\n{code}```\n"


def run(tmp_path, task, iterations: list[list[str]], **settings):
    answers = [_answer(code) for it in iterations for code in it]
    store = RunStore.create(tmp_path, "race", {"task": task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=len(iterations),
        samples=len(iterations[0]),
        executor="inline",
        final_seeds=2,
        **settings,
    )
    Loop(store, task, config, ScriptedBackend(responses=answers)).run()
    return store


def test_a_lucky_first_seed_does_not_take_the_run_best(tmp_path, table_task):
    steady, lucky = seed_table(1.0, 1.0, 1.0), seed_table(1.5, 0.2, 0.3)
    store = run(tmp_path, table_task, [[steady], [lucky]])
    race = store.iteration(1).race
    assert race is not None and race.incumbent == "iter_00/cand_00"
    assert store.iteration(1).ranking == [["iter_01/cand_00"]]  # by its first seed it led
    assert race.winner == "iter_00/cand_00" == store.iteration(1).run_best
    assert race.seeds == [0, 1, 2]
    scores = {e.id: e.scores for e in race.entrants}
    assert scores == {
        "iter_01/cand_00": pytest.approx([1.5, 0.2, 0.3]),
        "iter_00/cand_00": pytest.approx([1.0, 1.0, 1.0]),
    }
    assert not race.decided  # 1.0 against 0.67 on three seeds is not beyond noise
    assert store.summary().best == "iter_00/cand_00"
    assert store.summary().best_search_seeds == 3


def test_a_reward_beaten_beyond_noise_is_out_after_two_seeds(tmp_path, table_task):
    strong, weak, middling = seed_table(2.0, 2.0, 2.0), seed_table(0.1, 0.12), seed_table(1.9, 0.1)
    store = run(tmp_path, table_task, [[strong, weak, middling]], race_size=3)
    race = store.iteration(0).race
    out = {e.id: (e.out_after, e.p) for e in race.entrants}
    assert out["iter_00/cand_01"][0] == 2 and out["iter_00/cand_01"][1] < 0.05
    assert race.winner == "iter_00/cand_00"
    # No one is trained on a seed after it is out.
    assert store.seeds("iter_00/cand_01") == [1]
    assert store.seeds("iter_00/cand_00") == [1, 2]


def test_a_better_challenger_takes_the_place_on_equal_seeds(tmp_path, table_task):
    store = run(tmp_path, table_task, [[seed_table(1.0, 1.0, 1.0)], [seed_table(1.2, 1.2, 1.2)]])
    race = store.iteration(1).race
    assert race.winner == "iter_01/cand_00" == store.iteration(1).run_best
    assert race.decided
    lengths = {len(e.scores) for e in race.entrants}
    assert lengths == {2}  # decided after two seeds, each on the same two


def test_no_race_without_race_seeds(tmp_path, table_task):
    store = run(tmp_path, table_task, [[seed_table(1.0)], [seed_table(1.5, 0.2)]], race_seeds=1)
    assert store.iteration(1).race is None
    assert store.iteration(1).run_best == "iter_01/cand_00"  # its first seed won
    assert store.seeds("iter_00/cand_00") == []


def test_the_held_out_score_has_no_winners_curse():
    """Ten checkpoints of equal worth, five noisy episodes each: the best of them on the
    episodes that chose it looks about 0.7 better than it is; the same checkpoint on
    held-out episodes does not."""
    rng = np.random.default_rng(0)
    chosen, held_out = [], []
    for _ in range(4000):
        evaluations = [
            Evaluation(step=s, fitness=float(rng.normal(0.0, 1.0, 5).mean())) for s in range(10)
        ]
        chosen.append(choose(evaluations).fitness)
        held_out.append(float(rng.normal(0.0, 1.0, 5).mean()))
    standard_error = 1.0 / np.sqrt(5) / np.sqrt(4000)
    assert np.mean(chosen) > 0.6  # the winner's curse: E[max of 10] = 1.54 sd
    assert abs(np.mean(held_out)) < 4 * standard_error
