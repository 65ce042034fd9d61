"""The closing comparison (eureka_lab/loop/final.py): fresh seeds, a stated test, and a
human-normalised score only where it is defined."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.loop.loop import Loop
from eureka_lab.report.show import summary_lines
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import task_from_dict

from support.doubles import register
from support.tasks import seed_table_task_dict

BEST = (1.5, 1.6, 1.4)  # on seeds 1000, 2000, 3000


def _run(tmp_path, sparse: str):
    register()
    task = task_from_dict(
        seed_table_task_dict(
            human_reward="support.final_rewards:human_steady",
            sparse_reward=f"support.final_rewards:{sparse}",
        )
    )
    # The best scores 1.0 on the search's seed 0 and BEST on the final seeds.
    best = (
        "import numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        f"    table = np.array({[1.0, *BEST]!r})\n"
        "    s = np.where(obs[:, 0] >= 1000, obs[:, 0] // 1000, 0)\n"
        "    r = table[np.clip(s, 0, 3).astype(np.int64)]\n"
        '    return r, {"r": r}\n'
    )
    store = RunStore.create(tmp_path, "final", {"task": task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=1, executor="inline", final_seeds=3, race_seeds=1)
    answer = f"Idea: a table.\n\n```python\n{best}```\n"
    Loop(store, task, config, ScriptedBackend(responses=[answer])).run()
    return store


def test_the_verdict_is_welchs_test_over_fresh_seeds(tmp_path):
    store = _run(tmp_path, "sparse_low")
    summary = store.summary()
    assert summary.seeds == [1000, 2000, 3000]
    assert summary.final["best"].per_seed == pytest.approx(list(BEST))
    welch = stats.ttest_ind(BEST, (1.0, 1.1, 0.9), equal_var=False)
    test = summary.best_vs_human_test
    assert test.test == "Welch's t-test"
    assert test.difference == pytest.approx(np.mean(BEST) - 1.0)
    assert test.p == pytest.approx(welch.pvalue)
    low, high = test.interval
    assert low < test.difference < high and low > 0  # better, beyond noise
    assert summary.best_vs_human == "better"
    line = next(x for x in summary_lines(summary) if x.startswith("best vs human"))
    assert "Welch's t-test p = " in line and "95% interval" in line


def test_the_normalised_score_is_defined_where_human_beats_sparse(tmp_path):
    store = _run(tmp_path, "sparse_low")
    summary = store.summary()
    best, human, sparse = np.mean(BEST), 1.0, np.mean((0.0, 0.1, 0.05))
    assert summary.normalized_score == pytest.approx((best - sparse) / abs(human - sparse))
    assert summary.best_vs_sparse_test.p < 0.05
    assert any(x.startswith("best vs sparse: better") for x in summary_lines(summary))


def test_the_normalised_score_is_null_where_human_does_not_beat_sparse(tmp_path):
    store = _run(tmp_path, "sparse_close")
    summary = store.summary()
    assert summary.normalized_score is None
    assert json.loads((store.root / "summary.json").read_text())["normalized_score"] is None
    assert summary.human_vs_sparse_test.p >= 0.05
    line = next(x for x in summary_lines(summary) if x.startswith("human-normalised"))
    assert line.startswith(
        "human-normalised score: undefined (the human reward does not beat the sparse reward"
    )
