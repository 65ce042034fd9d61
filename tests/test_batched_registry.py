"""A task's own MuJoCo env with the batched definition it names (``batched:
module:Class``, beside the task file): the README's example (``examples/tall_hopper/``)
trains through the real executor, its jobs reading the env's and the definition's modules
and nothing else of the task's folder. Its step-by-step equality with the env is in
``test_batched_mujoco.py`` (C) and ``test_trainers_warp.py`` (MuJoCo Warp)."""

from __future__ import annotations

from pathlib import Path

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.batched.mujoco import MujocoBatch
from eureka_lab.batched.registry import definition_for
from eureka_lab.loop.loop import Loop
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import load_task, task_from_dict

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tall_hopper" / "tall_hopper.yaml"

ANSWER = """Hop forward, stay tall.

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    forward = np.asarray(info["x_velocity"], dtype=np.float64)
    height = np.asarray(info["height"], dtype=np.float64)
    components = {"forward": forward, "tall": np.clip(height - 1.0, 0.0, 0.3)}
    return sum(components.values()), components
```
"""


def test_jobs_read_the_env_and_definition_modules_only() -> None:
    task = load_task(str(EXAMPLE))
    folder = EXAMPLE.parent
    assert definition_for(task).__name__ == "TallHopper"
    assert MujocoBatch.supports(task)
    assert task.job_readable() == [folder / "tall_hopper_env.py", folder / "tall_hopper_batched.py"]
    assert folder in task.job_private()  # the fitness and rewards beside them stay private


def test_the_example_trains_through_the_real_executor(tmp_path) -> None:
    """A confined training job (ppo, on the definition in C) and an evaluation job on the
    task's own env and definition."""
    tiny = {
        "timesteps": 1024,
        "checkpoints": 2,
        "eval_episodes": 2,
        "max_episode_steps": 200,
        "trainer": {"name": "ppo", "n_envs": 8, "n_steps": 64, "epochs": 1},
    }
    task = task_from_dict({**load_task(str(EXAMPLE)).model_dump(), **tiny})
    store = RunStore.create(tmp_path, "tall", {"task": task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=1, workers=1)
    loop = Loop(store, task, config, ScriptedBackend(responses=[ANSWER]))
    loop.iteration(0, loop._opening(), None)
    result = store.result("iter_00/cand_00")
    assert result is not None and result.status == "trained", result
    assert result.components == ["forward", "tall"] and result.fitness is not None
    assert [c.step for c in store.checkpoints("iter_00/cand_00")] == [512, 1024]
