"""The whole loop on a tiny task through the scripted backend, including a repair."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.errors import ConfigError
from eureka_lab.loop import Loop, LoopConfig
from eureka_lab.report import show_run
from eureka_lab.store import RunStore

GOOD = """Here is a reward that rewards height and speed.

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    height_scale = {scale}
    height = height_scale * np.sin(3 * next_obs[:, 0])
    speed = 10.0 * np.abs(next_obs[:, 1])
    return height + speed, {{"height": height, "speed": speed}}
```
"""

BROKEN = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    lateral = next_obs[:, 5]
    return lateral, {"lateral": lateral}
```"""

NO_CODE = "I would reward the car for reaching the flag, but I cannot write code today."


def good(scale: float) -> str:
    return GOOD.format(scale=scale)


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
    config = LoopConfig(iterations=2, samples=3, workers=2, final_seeds=1)
    events: list[dict] = []
    summary = Loop(store, tiny_task, config, backend, reporter=events.append).run()
    return store, backend, summary, events


def test_loop_end_to_end(finished_run):
    store, backend, summary, events = finished_run
    by_id = {c["id"]: c for c in store.candidates()}
    assert by_id["iter_00/cand_00"]["result"]["status"] == "trained"
    broken = by_id["iter_00/cand_01"]
    assert broken["status"] == "failed" and broken["stage"] == "validation"
    assert "IndexError" in broken["reason"]
    assert by_id["iter_00/cand_01_r1"]["parent"] == "iter_00/cand_01"
    assert by_id["iter_00/cand_01_r1"]["result"]["status"] == "trained"
    assert by_id["iter_00/cand_02"]["stage"] == "parse"
    assert by_id["iter_00/cand_02_r1"]["result"]["status"] == "trained"
    twin = by_id["iter_01/cand_01"]
    assert twin["status"] == "duplicate" and twin["duplicate_of"] == "iter_00/cand_00"
    assert twin["result"] is None  # not trained twice

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
    saved = json.loads(store.path("summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    for name in ("best", "human", "sparse"):
        assert saved["final"][name]["fitness"] is not None
        assert store.exists(f"final/{name}/seed_0/policy.zip")
    assert "normalized_score" in saved
    assert events[-1]["event"] == "run_finished"
    assert store.exists("context.md") and "MountainCar" in store.path("context.md").read_text()


def test_show_reads_the_run(finished_run):
    store = finished_run[0]
    console = Console(record=True, width=200)
    show_run(store, console)
    text = console.export_text()
    assert "iteration 0" in text and "iteration 1" in text
    assert "failed (validation)" in text and "IndexError" in text
    assert "duplicate" in text and "final comparison" in text


def test_resume_of_a_finished_run_asks_and_trains_nothing(finished_run, tiny_task):
    store, _, summary, _ = finished_run
    results = sorted(store.root.rglob("result.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    backend = ScriptedBackend()
    again = Loop(store, tiny_task, LoopConfig(iterations=2, samples=3, workers=2), backend).run()
    assert backend.prompts == []
    assert {p: p.stat().st_mtime_ns for p in results} == before
    assert again["final"] == summary["final"]


@pytest.mark.parametrize("field", ["iterations", "samples", "workers", "final_seeds"])
def test_impossible_loop_settings_name_the_flag(field):
    with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')}"):
        LoopConfig(**{field: 0})


def test_final_comparison_is_redone_when_the_best_changed(finished_run, tiny_task):
    store = finished_run[0]
    best_result = store.path("final/best/seed_0/result.json")
    human_result = store.path("final/human/seed_0/result.json")
    before = best_result.stat().st_mtime_ns, human_result.stat().st_mtime_ns
    # As if an earlier comparison had been made with another best (a resumed run).
    store.write_text("final/best/reward.py", "# an older best\n")
    Loop(store, tiny_task, LoopConfig(iterations=2, samples=3, workers=2), ScriptedBackend()).run()
    assert best_result.stat().st_mtime_ns != before[0]
    assert human_result.stat().st_mtime_ns == before[1]
    best_id = store.read("summary.json")["best"]
    assert (
        store.path("final/best/reward.py").read_text()
        == store.path(f"{best_id}/reward.py").read_text()
    )


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
    from eureka_lab.task import task_from_dict

    from conftest import tiny_task_dict

    (tmp_path / "rewards.py").write_text(REWARDS)
    raw = tiny_task_dict(
        human_reward="rewards:human", sparse_reward="rewards:sparse", source_dir=str(tmp_path)
    )
    task = task_from_dict(raw)
    store = RunStore.create(tmp_path / "runs", "t", {})
    best_code = good(7.0).split("```python\n")[1].split("```")[0]
    store.write_text("iter_00/cand_00/reward.py", best_code)
    best = {"id": "iter_00/cand_00", "result": {"fitness": 0.0}}
    config = LoopConfig(workers=2, final_seeds=2)
    summary = Loop(store, task, config, ScriptedBackend()).final(best)
    expected = {
        "best": best_code,
        "human": task.reward_source("rewards:human"),
        "sparse": task.reward_source("rewards:sparse"),
    }
    assert summary["seeds"] == [0, 1000]
    for name, code in expected.items():
        for seed in (0, 1000):
            job = store.read(f"final/{name}/seed_{seed}/job.json")
            assert job["code"] == code and job["spec"]["seed"] == seed
        assert len(summary["final"][name]["per_seed"]) == 2
    assert "flag" in expected["sparse"] and "effort" in expected["human"]
