"""A group member attacking its siblings (``group`` > 1: several candidates trained in one
process). The rewards of a group share a process, so a hostile one that took over the
process can send frames in a sibling's name. What it cannot do, whatever it sends: raise
its own recorded score, reach another group, send a score, a video, a policy that is not
plain finite floats, or a frame for a member its group does not have.

The hostile member is played by the ``group`` test double (``support.doubles.GroupTrainer``):
a member whose reward has a ``forge`` component sends ``support.doubles.forgeries`` through the
channel it shares with its sibling. The same run with that member honest (the same reward
values) is the reference.
"""

from __future__ import annotations

from typing import Any

import pytest

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.loop.loop import Loop
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import task_from_dict

from support.doubles import forgeries, register
from support.tasks import tiny_task_dict

register()

ANSWER = """```python
import numpy as np


def compute_reward(obs, action, next_obs, info):
    upright = {scale} * next_obs[:, 0]
    {name} = 0.0 * next_obs[:, 1]
    return upright + {name}, {{"upright": upright, "{name}": {name}}}
```"""


def answer(scale: float, hostile: bool = False) -> str:
    return ANSWER.format(scale=scale, name="forge" if hostile else "other")


GROUP = "iter_00/cand_00+iter_00/cand_01"


def run(tmp_path, hostile: bool) -> tuple[RunStore, list[dict[str, Any]]]:
    """One iteration of four candidates in two groups of two; cand_01 attacks cand_00."""
    task = task_from_dict(
        tiny_task_dict(
            env_id="Pendulum-v1",
            max_episode_steps=10,
            timesteps=1024,
            checkpoints=4,
            eval_episodes=1,
            fitness="support.doubles:mean_action",
            trainer={"name": "group"},
        )
    )
    answers = [answer(1.0), answer(2.0, hostile), answer(3.0), answer(4.0)]
    store = RunStore.create(tmp_path, "group", {"task": task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=4, executor="inline", race_seeds=1)
    events: list[dict[str, Any]] = []
    Loop(store, task, config, ScriptedBackend(responses=answers), reporter=events.append).iteration(
        0, [], None
    )
    assert [e["ids"] for e in events if e["event"] == "training_grouped"] == [
        ["iter_00/cand_00", "iter_00/cand_01"],
        ["iter_00/cand_02", "iter_00/cand_03"],
    ]
    return store, events


def scores(store: RunStore, cid: str) -> tuple[Any, ...]:
    """What a candidate's record says it scored: fitness, best step, each checkpoint."""
    result = store.result(cid)
    assert result is not None and result.status == "trained", result
    return (
        result.fitness,
        result.best_step,
        [(c.step, c.fitness) for c in store.checkpoints(cid)],
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    attacked = run(tmp_path_factory.mktemp("attacked"), hostile=True)
    honest = run(tmp_path_factory.mktemp("honest"), hostile=False)
    return attacked, honest


def test_a_member_cannot_raise_its_own_score_nor_reach_another_group(runs):
    (attacked, _), (honest, _) = runs
    # The attacker's own record is the one it has when honest: nothing it sent in its
    # sibling's name, nor the refused frames in its own, changed it.
    assert scores(attacked, "iter_00/cand_01") == scores(honest, "iter_00/cand_01")
    # The other group trained in another process: untouched.
    for cid in ("iter_00/cand_02", "iter_00/cand_03"):
        assert scores(attacked, cid) == scores(honest, cid)
    # A training job is never heard on videos: only the evaluator (no reward code) is.
    assert not list(attacked.root.rglob("rollout.mp4"))


def test_invalid_frames_are_refused_and_recorded(runs):
    (attacked, events), _ = runs
    refused = [e for e in events if e["event"] == "checkpoint_refused"]
    # A member index its group does not have (another group's, negative, not an int, none).
    assert [e["id"] for e in refused if e["reason"] == "no valid member"] == [GROUP] * 7
    # In its own name: a score in the frame (the schema has no such field) and an integer
    # policy; in its sibling's: a NaN policy.
    own = [e for e in refused if e["id"] == "iter_00/cand_01"]
    assert len(own) == 2 and "fitness" in own[0]["reason"]
    assert own[1]["reason"] == "invalid policy or step"
    sibling = [e for e in refused if e["id"] == "iter_00/cand_00"]
    assert [e["reason"] for e in sibling] == ["invalid policy or step"]
    videos = [e for e in events if e["event"] == "video_refused"]
    assert sorted(e["id"] for e in videos) == ["iter_00/cand_00", "iter_00/cand_01"]
    # Every forged frame is accounted for: refused, or one of the two the sibling got.
    assert len(refused) + len(videos) + 2 == len(forgeries(own=1, sibling=0))


def test_what_a_member_can_do_to_its_sibling(runs):
    """Documented, not wanted: frames in a sibling's name that pass the checks become the
    sibling's, and the evaluator scores them as the sibling's policy. A member can also
    disturb its sibling's training in their shared process (not shown here)."""
    (attacked, _), (honest, _) = runs
    forged = scores(attacked, "iter_00/cand_00")
    assert forged != scores(honest, "iter_00/cand_00")
    assert forged[2][-1] == (10**9, 2.0)  # the forged policy, scored by the evaluator
    assert attacked.training_state("iter_00/cand_00", 1024) is not None  # and a state


# ----------------------------------------------------------------------- real processes

HONEST = """
import numpy as np


def compute_reward(obs, action, next_obs, info):
    height = SCALE * np.sin(3 * next_obs[:, 0])
    return height, {"height": height}
"""

# With every Python layer off, the reward finds the job's channel and sends frames in its
# sibling's name (member 0), for members of no group or another's (2, 3, -1, none) and a
# video in its own name.
HOSTILE = """
import numpy as np

SENT = []


def compute_reward(obs, action, next_obs, info):
    if not SENT:
        SENT.append(1)
        import gc
        from safetensors.numpy import save
        fine = save({"policy/x": np.zeros(1, dtype=np.float32)})
        video = b"\\x00\\x00\\x00\\x18ftypisom" + bytes(64)
        for obj in gc.get_objects():
            if type(obj).__name__ == "Channel":
                for member in (0, 2, 3, -1, None):
                    data = {"step": 10**9, "components": {}, "member": member}
                    obj.send("checkpoint", data, fine)
                obj.send("video", {"step": 1, "member": 1}, video)
    height = SCALE * np.sin(3 * next_obs[:, 0])
    return height, {"height": height}
"""


def real_run(folder, hostile: bool) -> tuple[RunStore, list[dict[str, Any]]]:
    trainer = {"name": "ppo", "n_envs": 2, "n_steps": 32, "minibatch_size": 32, "epochs": 1}
    task = task_from_dict(tiny_task_dict(trainer={**trainer, "group": 2}))
    codes = [HONEST, HOSTILE if hostile else HONEST, HONEST, HONEST]
    answers = [
        f"```python\n{code.replace('SCALE', str(k + 1.0))}\n```" for k, code in enumerate(codes)
    ]
    store = RunStore.create(folder, "group", {"task": task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=4, workers=2, race_seeds=1)
    events: list[dict[str, Any]] = []
    loop = Loop(store, task, config, ScriptedBackend(responses=answers), reporter=events.append)
    loop.iteration(0, [], None)
    return store, events


@pytest.mark.oslayers
def test_a_hostile_member_in_a_real_group_job(tmp_path, monkeypatch):
    """The ppo trainer's groups in sandboxed jobs, every Python layer off in them
    (tests/support/bypass.py): the frames a hostile reward sends on its job's pipe."""
    import functools

    from eureka_lab.executors import child as executor
    from eureka_lab.loop import candidates

    from support import bypass

    monkeypatch.setattr(candidates, "check_code", lambda code: [])
    markers = tmp_path / "markers"
    markers.mkdir()
    child = functools.partial(bypass.child_main, layers=("python",), marker_dir=str(markers))
    monkeypatch.setattr(executor, "main", child)
    attacked, events = real_run(tmp_path / "attacked", hostile=True)
    assert len(list(markers.iterdir())) >= 6  # 4 validations and 2 group trainings at least
    honest, _ = real_run(tmp_path / "honest", hostile=False)

    for cid in ("iter_00/cand_01", "iter_00/cand_02", "iter_00/cand_03"):
        assert scores(attacked, cid) == scores(honest, cid), cid
    refused = [e for e in events if e["event"] == "checkpoint_refused"]
    assert [e["reason"] for e in refused if e["id"] == GROUP] == ["no valid member"] * 4
    assert [e["id"] for e in events if e["event"] == "video_refused"] == ["iter_00/cand_01"]
    assert not list(attacked.root.rglob("rollout.mp4"))
    # The sibling got the forged checkpoint: its real ones came after it and were refused.
    assert [c.step for c in attacked.checkpoints("iter_00/cand_00")] == [10**9]
