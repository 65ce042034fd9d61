"""Each seam's test double, registered by name and driven through the whole loop: a fake
trainer, an in-process executor and a scripted selector."""

from __future__ import annotations

import pytest
from rich.console import Console

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.core.errors import ConfigError
from eureka_lab.loop.loop import Loop
from eureka_lab.report.results import load_run
from eureka_lab.report.show import show_run
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.selectors.base import Selector
from eureka_lab.task.load import task_from_dict

from support.answers import good
from support.doubles import FakeTrainer, GrowingTrainer, InlineExecutor, ScriptedSelector, register
from support.tasks import tiny_task_dict

register()


@pytest.fixture
def fake_task():
    return task_from_dict(tiny_task_dict(trainer={"name": "fake", "action": 2}))


def test_doubles_drive_the_loop_by_name(tmp_path, fake_task):
    """The fake trainer trains, the inline executor runs every job in this process, and the
    scripted selector (not the fitness) decides each iteration's best and the run's."""
    FakeTrainer.trained.clear()
    ScriptedSelector.calls.clear()
    backend = ScriptedBackend(responses=[good(1.0), good(2.0), good(3.0), good(4.0)])
    store = RunStore.create(tmp_path, "t", {"task": fake_task.model_dump(mode="json")})
    config = LoopConfig(iterations=2, samples=2, executor="inline", selection="scripted")
    loop = Loop(store, fake_task, config, backend)
    assert isinstance(loop.executor, InlineExecutor)
    summary = loop.run()

    kinds = [j.spec.kind for j in loop.executor.jobs]
    final = 3 * config.final_seeds  # best, human and sparse on each final seed
    assert kinds.count("validate") == 4 and kinds.count("evaluate") == 4 + final
    assert len(FakeTrainer.trained) == 4 + final  # no race: the scripted selector does not
    # The selector was asked for each iteration, then to pick the run's best.
    assert ScriptedSelector.calls[0] == ["iter_00/cand_00", "iter_00/cand_01"]
    assert ["iter_01/cand_01", "iter_00/cand_01"] in ScriptedSelector.calls
    assert store.iteration(0).best == "iter_00/cand_01"
    assert store.iteration(0).ranking == [["iter_00/cand_01"], ["iter_00/cand_00"]]
    assert summary.best == "iter_01/cand_01"
    # Fitness came from the evaluator rolling out the fake policy (always push right).
    result = store.result("iter_00/cand_00")
    assert result.status == "trained" and result.fitness == -50.0
    assert result.components == ["height", "speed"]
    assert [c.step for c in store.checkpoints("iter_00/cand_00")] == [256, 512]
    # The iteration-1 prompt carried the scripted best's answer, not the fittest one.
    assert backend.prompts[1].messages[2].content == good(2.0)


def test_unknown_trainer_names_the_registered_ones():
    with pytest.raises(Exception, match="Unknown trainer 'fak'. Did you mean 'fake'"):
        task_from_dict(tiny_task_dict(trainer={"name": "fak"}))


def test_fake_trainer_settings_are_validated_by_the_trainer():
    with pytest.raises(Exception, match="unknown fake setting 'acton'. Did you mean 'action'"):
        task_from_dict(tiny_task_dict(trainer={"name": "fake", "acton": 1}))


def test_fitness_selection_refuses_candidates_without_fitness():
    from eureka_lab.runs.records import Candidate, TrainingResult
    from eureka_lab.runs.scores import Trained
    from eureka_lab.selectors.fitness import FitnessSelector

    cand = Candidate(id="iter_00/cand_00", iteration=0, index=0)
    with pytest.raises(ConfigError, match="needs a fitness"):
        FitnessSelector().rank([Trained(cand, TrainingResult(status="trained"))])


def test_fitness_selection_groups_ties_in_input_order():
    from eureka_lab.runs.records import Candidate, TrainingResult
    from eureka_lab.runs.scores import Trained
    from eureka_lab.selectors.fitness import FitnessSelector

    def t(i, f):
        cand = Candidate(id=f"iter_00/cand_{i:02d}", iteration=0, index=i)
        return Trained(cand, TrainingResult(status="trained", fitness=f))

    ranking = FitnessSelector().rank([t(0, 1.0), t(1, 3.0), t(2, 1.0), t(3, 2.0)])
    assert ranking == [
        ["iter_00/cand_01"],
        ["iter_00/cand_03"],
        ["iter_00/cand_00", "iter_00/cand_02"],
    ]


class OldestFirst(Selector):
    """A selector under which no later candidate ever improves on the first."""

    def rank(self, trained):
        ordered = sorted(trained, key=lambda t: (t.candidate.iteration, t.candidate.index))
        return [[t.id] for t in ordered]


def test_after_an_iteration_without_improvement_the_prompt_lists_what_failed(tmp_path, fake_task):
    from eureka_lab.selectors.base import SELECTORS

    SELECTORS.register("oldest", OldestFirst)
    answers = [good(1.0), good(2.0), good(3.0), "no code at all", good(5.0), good(6.0)]
    backend = ScriptedBackend(responses=answers)
    store = RunStore.create(tmp_path, "t", {"task": fake_task.model_dump(mode="json")})
    config = LoopConfig(
        iterations=3, samples=2, executor="inline", selection="oldest", repair_rounds=0
    )
    Loop(store, fake_task, config, backend).run()
    first, second, third = (p.messages[-1].content for p in backend.prompts)
    # Iterations 1 and 2 both build on iteration 0's best, yet their prompts differ: the
    # second lists iteration 1's attempts, the failed one with its reason.
    assert backend.prompts[1].messages[2].content == backend.prompts[2].messages[2].content
    assert second != third
    assert "iter_01/cand_00 [trained]" in third and "iter_01/cand_01 [failed]" in third
    assert "no usable code" in third
    assert "iter_01/cand_00" not in second
    assert "iter_00/cand_00 [trained]" in second and "(the best)" in second


def test_final_seeds_never_replay_the_search_seed():
    for seed in (0, 7, 1000):
        seeds = LoopConfig(seed=seed).final_seed_list
        assert len(seeds) == 5 == len(set(seeds)) and seed not in seeds
        race = [seed + k for k in range(LoopConfig().race_seeds)]
        assert not set(seeds) & set(race)


@pytest.fixture
def growing_task():
    return task_from_dict(
        tiny_task_dict(
            env_id="Pendulum-v1",
            max_episode_steps=10,
            timesteps=1024,
            checkpoints=4,
            fitness="support.doubles:mean_action",
            trainer={"name": "growing"},
        )
    )


def test_halving_trains_the_better_half_on_from_saved_state(tmp_path, growing_task):
    """K=4 on a budget of 1024: all four to 256, the better two on to 512, the best to 1024;
    the rest stopped, each continued training resumed from the state it saved."""
    GrowingTrainer.budgets.clear()
    scales = [3.0, 9.0, 1.0, 5.0]  # the growing fake learns faster with a larger scale
    backend = ScriptedBackend(responses=[good(s) for s in scales])
    store = RunStore.create(tmp_path, "t", {"task": growing_task.model_dump(mode="json")})
    config = LoopConfig(iterations=1, samples=4, executor="inline", schedule="halving")
    Loop(store, growing_task, config, backend).iteration(0, [], None)

    runs = [(b.start, b.timesteps, b.keep_state) for b in GrowingTrainer.budgets]
    assert runs == [(0, 256, True)] * 4 + [(256, 512, True)] * 2 + [(512, 1024, False)]
    results = {f"iter_00/cand_{k:02d}": store.result(f"iter_00/cand_{k:02d}") for k in range(4)}
    stopped = {cid: r.stopped_at for cid, r in results.items()}
    assert stopped == {
        "iter_00/cand_00": 256,
        "iter_00/cand_01": None,  # scale 9: the best, trained on the whole budget
        "iter_00/cand_02": 256,
        "iter_00/cand_03": 512,
    }
    assert [r.spent for r in results.values()] == [256, 1024, 256, 512]
    assert sum(r.spent for r in results.values()) == 2048  # half of 4 x 1024
    best = results["iter_00/cand_01"]
    assert best.steps == 1024 and [c.step for c in store.checkpoints("iter_00/cand_01")] == [
        256,
        512,
        768,
        1024,
    ]
    assert all(c.fitness is not None for c in store.checkpoints("iter_00/cand_01"))
    assert store.iteration(0).best == "iter_00/cand_01"
    run = load_run(store.root)
    views = {c.id: c for c in run.candidates}
    assert views["iter_00/cand_03"].stopped_at == 512 and views["iter_00/cand_03"].steps == 512
    assert (
        views["iter_00/cand_01"].spent_steps == 1024 and views["iter_00/cand_01"].stopped_at is None
    )
    # show and the next prompt's table say which were stopped, and where.
    console = Console(record=True, width=200)
    show_run(store, console)
    assert "stopped at 256 steps" in console.export_text()
    tried = {t.id: t for t in Loop(store, growing_task, config, backend).scores.tried(range(1))}
    assert tried["iter_00/cand_03"].status == "stopped early, scored at 512 of 1,024 steps"

    # Resuming the finished iteration trains nothing again.
    GrowingTrainer.budgets.clear()
    Loop(store, growing_task, config, ScriptedBackend(responses=[])).iteration(0, [], None)
    assert GrowingTrainer.budgets == []


def test_halving_needs_fitness_selection():
    with pytest.raises(ConfigError, match="keeps the better half.*asks for preferences"):
        LoopConfig(schedule="halving", selection="oracle")
    with pytest.raises(ConfigError, match="Unknown schedule"):
        LoopConfig(schedule="halve")
