"""The whole loop on a tiny task through the scripted backend, including a repair."""

from __future__ import annotations

import pytest
from rich.console import Console

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.core.errors import ConfigError
from eureka_lab.loop.loop import Loop
from eureka_lab.report.show import show_run
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Candidate, TrainingResult
from eureka_lab.runs.scores import Trained
from eureka_lab.runs.store import RunStore

from support.answers import good

BROKEN = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    lateral = next_obs[:, 5]
    return lateral, {"lateral": lateral}
```"""

NO_CODE = "I would reward the car for reaching the flag, but I cannot write code today."


@pytest.fixture
def finished_run(tmp_path, tiny_task):
    backend = ScriptedBackend(
        responses=[
            good(1.0),
            BROKEN,
            NO_CODE,  # iteration 0
            good(2.0),
            good(3.0),  # repairs of cand_01 and cand_02
            good(4.0),
            good(1.0),
            good(5.0),  # iteration 1: the middle one is a duplicate
        ]
    )
    store = RunStore.create(tmp_path, "tiny", {"task": tiny_task.model_dump(mode="json")})
    config = LoopConfig(iterations=2, samples=3, workers=2, final_seeds=1, race_seeds=1)
    events: list[dict] = []
    summary = Loop(store, tiny_task, config, backend, reporter=events.append).run()
    return store, backend, summary, events


def test_loop_end_to_end(finished_run):
    store, backend, summary, events = finished_run
    by_id = {c.id: c for c in store.candidates()}

    def status(cid):
        return store.result(cid).status

    assert status("iter_00/cand_00") == "trained"
    broken = by_id["iter_00/cand_01"]
    assert broken.status == "failed" and broken.stage == "validation"
    assert "IndexError" in broken.reason
    assert by_id["iter_00/cand_01_r1"].parent == "iter_00/cand_01"
    assert status("iter_00/cand_01_r1") == "trained"
    assert by_id["iter_00/cand_02"].stage == "parse"
    assert status("iter_00/cand_02_r1") == "trained"
    twin = by_id["iter_01/cand_01"]
    assert twin.status == "duplicate" and twin.duplicate_of == "iter_00/cand_00"
    assert store.result(twin.id) is None  # not trained twice

    # The repair prompt carried the error and the traceback line inside the reward code.
    repair = backend.prompts[1]
    assert repair.purpose == "repair"
    assert repair.messages[-2].content == BROKEN
    assert "IndexError" in repair.messages[-1].content
    assert "next_obs[:, 5]" in repair.messages[-1].content

    # Iteration 1 was asked with the best code and its reward reflection.
    second = backend.prompts[3]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "user"]
    feedback = second.messages[-1].content
    assert "task score:" in feedback and "height:" in feedback and "speed:" in feedback
    assert "Max:" in feedback and "episode length:" in feedback

    # Every request and answer is stored.
    records = store.requests()
    assert len(records) == 4 and all(r["messages"] and r["completions"] for r in records)

    # The final comparison trained best, human and sparse with the same seeds.
    assert store.summary() == summary
    for name in ("best", "human", "sparse"):
        assert summary.final[name].fitness is not None
        assert store.policy_path(f"final/{name}/seed_1000") is not None
    assert events[-1]["event"] == "run_finished"
    assert "MountainCar" in store.context()

    # Each iteration records how selection ranked its trained candidates.
    it0 = store.iteration(0)
    assert it0.best == it0.ranking[0][0]
    assert sorted(c for group in it0.ranking for c in group) == sorted(
        c.id for c in store.candidates(0) if store.result(c.id) is not None
    )


def test_show_reads_the_run(finished_run):
    store = finished_run[0]
    console = Console(record=True, width=200)
    show_run(store, console)
    text = console.export_text()
    assert "iteration 0" in text and "iteration 1" in text
    assert "failed (validation)" in text and "IndexError" in text
    assert "duplicate" in text and "final comparison" in text
    assert "what the best policy did" in text and "obs[0]:" in text


def test_resume_of_a_finished_run_asks_and_trains_nothing(finished_run, tiny_task):
    store, _, summary, _ = finished_run
    results = sorted(store.root.rglob("result.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    backend = ScriptedBackend()
    again = Loop(
        store, tiny_task, LoopConfig(iterations=2, samples=3, workers=2, final_seeds=1), backend
    ).run()
    assert backend.prompts == []
    assert {p: p.stat().st_mtime_ns for p in results} == before
    assert again.final == summary.final


@pytest.mark.parametrize("field", ["iterations", "samples", "workers", "final_seeds"])
def test_impossible_loop_settings_name_the_parameter(field):
    with pytest.raises(ConfigError, match=f"^{field} must be at least 1"):
        LoopConfig(**{field: 0})


def test_final_comparison_is_redone_when_the_best_changed(finished_run, tiny_task):
    store = finished_run[0]
    before = store.result("final/best/seed_1000"), store.result("final/human/seed_1000")
    # As if an earlier comparison had been made with another best (a resumed run).
    store.save_reward_code("final/best/seed_1000", "# an older best\n")
    events = []
    Loop(
        store,
        tiny_task,
        LoopConfig(iterations=2, samples=3, workers=2, final_seeds=1),
        ScriptedBackend(),
        reporter=events.append,
    ).run()
    retrained = [e["id"] for e in events if e["event"] == "training_started"]
    assert retrained == ["final/best/seed_1000"]
    assert store.result("final/human/seed_1000") == before[1]
    best_id = store.summary().best
    assert store.reward_code("final/best/seed_1000") == store.reward_code(best_id)


REWARDS = """
import numpy as np


def human(obs, action, next_obs, info):
    effort = -0.01 * np.ones(len(obs))
    return effort, {"effort": effort}


def sparse(obs, action, next_obs, info):
    flag = (next_obs[:, 0] >= 0.5).astype(float)
    return flag, {"flag": flag}
"""


def test_final_comparison_trains_each_reward_it_names(tmp_path):
    from eureka_lab.task.load import task_from_dict

    from support.tasks import tiny_task_dict

    (tmp_path / "rewards.py").write_text(REWARDS)
    raw = tiny_task_dict(
        human_reward="rewards:human", sparse_reward="rewards:sparse", source_dir=str(tmp_path)
    )
    task = task_from_dict(raw)
    store = RunStore.create(tmp_path / "runs", "t", {})
    best_code = good(7.0).split("```python\n")[1].split("```")[0]
    store.save_reward_code("iter_00/cand_00", best_code)
    cand = Candidate(id="iter_00/cand_00", iteration=0, index=0, status="valid")
    best = Trained(cand, TrainingResult(status="trained", fitness=0.0))
    config = LoopConfig(workers=2, final_seeds=2)
    summary = Loop(store, task, config, ScriptedBackend()).final.run(best)
    expected = {
        "best": (best_code, ["height", "speed"]),
        "human": (task.reward_source("rewards:human"), ["effort"]),
        "sparse": (task.reward_source("rewards:sparse"), ["flag"]),
    }
    assert summary.seeds == [1000, 2000]  # never the search seed (0)
    for name, (code, components) in expected.items():
        for seed in (1000, 2000):
            key = f"final/{name}/seed_{seed}"
            assert store.reward_code(key) == code
            # The reward trained is the one named: its components are what training saw.
            assert store.result(key).components == components
            assert [c.step for c in store.checkpoints(key)] == [256, 512]
        assert len(summary.final[name].per_seed) == 2


def test_load_run_reads_a_finished_run(finished_run):
    from eureka_lab import load_run

    store, backend, summary, _ = finished_run
    run = load_run(store.root)
    assert run.finished and run.summary == summary and run.task.name == "tiny_car"
    assert run.config == LoopConfig(iterations=2, samples=3, workers=2, final_seeds=1, race_seeds=1)
    assert [it.iteration for it in run.iterations] == [0, 1]
    best = run.best
    assert best.id == summary.best and best.status == "trained"
    assert best.fitness == store.result(best.id).fitness
    assert best.code == store.reward_code(best.id) and "compute_reward" in best.code
    assert best.components == ["height", "speed"] and best.checkpoints
    assert best.prompt == backend.prompts[3].messages  # iteration 1's sampling prompt
    assert best.usage.completion_tokens > 0
    assert best.policy_path is not None and best.policy_path.suffix == ".safetensors"
    broken = run.candidate("iter_00/cand_01")
    assert broken.status == "failed" and broken.stage == "validation"
    assert "IndexError" in broken.error and broken.fitness is None
    repair = run.candidate("iter_00/cand_01_r1")
    assert repair.parent == broken.id and repair.prompt[-1].content.startswith("The reward")


TIRED = """```python
import numpy as np

calls = [0]

def compute_reward(obs, action, next_obs, info):
    calls[0] += 1
    if calls[0] > 60:
        raise RuntimeError("tired after 60 calls")
    height = np.sin(3 * next_obs[:, 0])
    return height, {"height": height}
```"""


def test_a_group_of_candidates_trains_in_one_process_and_fails_apart(tmp_path):
    """With the trainer's ``group`` at 2, the first two candidates train in one job and the
    third alone; the one whose reward raises during training fails alone, with its reason,
    and the others are trained, evaluated and stored as usual. The closing comparison
    groups its trainings of one seed the same way."""
    from eureka_lab.task.load import task_from_dict

    from support.tasks import tiny_task_dict

    trainer = {"name": "ppo", "n_envs": 2, "n_steps": 32, "minibatch_size": 32, "epochs": 1}
    task = task_from_dict(tiny_task_dict(trainer={**trainer, "group": 2}))
    backend = ScriptedBackend(responses=[good(1.0), TIRED, good(2.0)])
    store = RunStore.create(tmp_path, "tiny", {"task": task.model_dump(mode="json")})
    events: list[dict] = []
    config = LoopConfig(iterations=1, samples=3, workers=2, final_seeds=1)
    Loop(store, task, config, backend, reporter=events.append).run()
    grouped = [e["ids"] for e in events if e["event"] == "training_grouped"]
    assert grouped[0] == ["iter_00/cand_00", "iter_00/cand_01"]
    assert ["final/best/seed_1000", "final/human/seed_1000"] in grouped
    for key in ("iter_00/cand_00", "iter_00/cand_02"):
        result = store.result(key)
        assert result.status == "trained" and result.fitness is not None, result
        assert result.components == ["height", "speed"]
        assert [c.step for c in store.checkpoints(key)] == [256, 512]
    tired = store.result("iter_00/cand_01")
    assert tired.status == "failed" and "tired after 60 calls" in tired.reason
    assert "final/sparse/seed_1000" not in {k for ids in grouped for k in ids}
    assert store.result("final/sparse/seed_1000").status == "trained"


def test_halving_groups_the_first_round_and_continues_the_better_alone(tmp_path):
    """Successive halving with groups: the first round trains both candidates in one job,
    each keeping its own training state; the better one continues alone from its state."""
    from eureka_lab.task.load import task_from_dict

    from support.tasks import tiny_task_dict

    trainer = {"name": "ppo", "n_envs": 2, "n_steps": 32, "minibatch_size": 32, "epochs": 1}
    task = task_from_dict(tiny_task_dict(trainer={**trainer, "group": 2}))
    backend = ScriptedBackend(responses=[good(1.0), good(3.0)])
    store = RunStore.create(tmp_path, "tiny", {"task": task.model_dump(mode="json")})
    events: list[dict] = []
    config = LoopConfig(iterations=1, samples=2, workers=2, schedule="halving")
    loop = Loop(store, task, config, backend, reporter=events.append)
    loop.iteration(0, loop._opening(), None)
    grouped = [e["ids"] for e in events if e["event"] == "training_grouped"]
    assert grouped == [["iter_00/cand_00", "iter_00/cand_01"]]
    starts = [(e["id"], e["start"]) for e in events if e["event"] == "training_started"]
    results = {k: store.result(k) for k in ("iter_00/cand_00", "iter_00/cand_01")}
    (kept,) = [k for k, r in results.items() if r.stopped_at is None]
    (stopped,) = [k for k, r in results.items() if r.stopped_at is not None]
    assert starts == [("iter_00/cand_00", 0), ("iter_00/cand_01", 0), (kept, 256)]
    assert results[kept].steps == 512 and results[kept].spent_steps == 512
    assert results[stopped].steps == results[stopped].stopped_at == 256
    assert [c.step for c in store.checkpoints(kept)] == [256, 512]
