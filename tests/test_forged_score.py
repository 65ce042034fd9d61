"""The forged-score test: reward code with every Python layer switched off tries to forge its
own score, and the recorded fitness stays the honest one.

Two candidates of one iteration return the same reward values, so with the same seed they
train to the same policy and must score the same. The second one also attacks, once every
Python layer is bypassed in its job (tests/support/bypass.py): it overwrites result,
checkpoint and policy files (its own and its twin's), writes a pickle as the policy, leaves a
process behind to overwrite them after the job, patches the fitness function in its own
process, and sends forged frames on its pipe. Fitness is measured by an evaluation process
that never loads reward code, from policy parameters the orchestrator checked, and written
by the orchestrator; the job process can write nowhere (Landlock, seccomp).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
from safetensors.numpy import load

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.executors import child as executor
from eureka_lab.loop.loop import Loop
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import task_from_dict

from support.tasks import tiny_task_dict

HONEST = """
import numpy as np


def compute_reward(obs, action, next_obs, info):
    height = np.sin(3 * next_obs[:, 0])
    speed = 10.0 * np.abs(next_obs[:, 1])
    return height + speed, {"height": height, "speed": speed}
"""

ATTACK = """
import numpy as np

FORGED = '{"status": "trained", "fitness": 1000000000.0, "success_rate": 1.0}'
DONE = []


def _forge(run):
    import os, pickle
    targets = []
    for cand in ("iter_00/cand_00", "iter_00/cand_01"):
        for name in ("result.json", "checkpoints.json", "policy.safetensors"):
            targets.append(os.path.join(run, cand, name))
    targets.append(os.path.join(os.getcwd(), "result.json"))
    for path in targets:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(FORGED)
        except Exception:
            pass
    try:
        with open(os.path.join(run, "iter_00/cand_01/policy.safetensors"), "wb") as f:
            f.write(pickle.dumps(os.system))
    except Exception:
        pass
    return targets


def compute_reward(obs, action, next_obs, info):
    if not DONE:
        DONE.append(1)
        import gc, os, time
        run = RUN
        _forge(run)
        try:  # a process that outlives the job and forges again once results are written
            if os.fork() == 0:
                os.setsid()
                for _ in range(300):
                    _forge(run)
                    time.sleep(0.1)
                os._exit(0)
        except Exception:
            pass
        try:  # patch the fitness in this process
            import eureka_lab.evaluation.evaluator as ev
            ev.env_return = lambda episode: 1e9
            ev.score_episodes = lambda *a, **k: None
        except Exception:
            pass
        for obj in gc.get_objects():  # forged frames on the pipe
            if type(obj).__name__ == "Channel":
                try:
                    obj.send("checkpoint", {"step": 1, "components": {}, "fitness": 1e9})
                except Exception:
                    pass
    height = np.sin(3 * next_obs[:, 0])
    speed = 10.0 * np.abs(next_obs[:, 1])
    return height + speed, {"height": height, "speed": speed}
"""


def _answer(code: str) -> str:
    return f"```python\n{code}\n```"


@pytest.fixture
def bypassed(monkeypatch, tmp_path):
    """Every Python layer off: the orchestrator's static check, and in the job children this
    test starts the sandbox's checks and restricted namespace; markers counted."""
    from eureka_lab.loop import candidates

    from support import bypass

    monkeypatch.setattr(candidates, "check_code", lambda code: [])

    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setattr(
        executor,
        "main",
        functools.partial(bypass.child_main, layers=("python",), marker_dir=str(markers)),
    )
    return markers


@pytest.mark.oslayers
def test_reward_code_cannot_forge_its_score(tmp_path, bypassed):
    # A fitness that differs between policies: the furthest position reached.
    (tmp_path / "score.py").write_text(
        "def furthest(episode):\n    return float(episode.observations[:, 0].max())\n"
    )
    task = task_from_dict(tiny_task_dict(fitness="score:furthest", source_dir=str(tmp_path)))
    runs = tmp_path / "runs"
    store = RunStore.create(runs, "forge", {"task": task.model_dump(mode="json")})
    attack = ATTACK.replace("RUN", repr(str(store.root)))
    backend = ScriptedBackend(responses=[_answer(HONEST), _answer(attack)])
    config = LoopConfig(iterations=1, samples=2, workers=2)
    Loop(store, task, config, backend).run()
    time.sleep(1.0)  # a process left behind would have forged by now

    # The bypass was in force in every job (2 validations, 2 trainings, 3 final trainings).
    assert len(list(bypassed.iterdir())) >= 7
    honest, forger = store.result("iter_00/cand_00"), store.result("iter_00/cand_01")
    assert honest.status == forger.status == "trained", (honest, forger)
    assert forger.fitness == honest.fitness != 1e9

    def trace(cid):
        return [c.model_dump(exclude={"seconds"}) for c in store.checkpoints(cid)]

    assert trace("iter_00/cand_01") == trace("iter_00/cand_00")  # the same training, exactly
    assert len({c["fitness"] for c in trace("iter_00/cand_00")} | {-0.5}) > 1
    for cid in ("iter_00/cand_00", "iter_00/cand_01"):
        arrays = load(store.policy(cid))  # safetensors, not the pickle
        assert all(a.dtype == np.float32 for a in arrays.values())
    for name in ("result.json", "checkpoints.json", "iteration.json", "summary.json"):
        for path in store.root.rglob(name):
            assert b"1000000000" not in path.read_bytes(), f"{path} holds the forged score"
    assert store.summary().final["best"].fitness != 1e9
    refused = [e for e in store.events() if e["event"] == "checkpoint_refused"]
    assert refused and all(e["id"].startswith("iter_00/cand_01") for e in refused)  # any seed
