"""Feedback that says why each attempt lost (issue 20, point 4): every test reads a rendered
prompt, built by the Reflection feedback from realistic material or by a tiny loop run."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest

from eureka_lab.backends.scripted import ScriptedBackend
from eureka_lab.core.bounds import MAX_ANSWER_CHARS
from eureka_lab.core.statistics import Estimate
from eureka_lab.evaluation.evaluator import choose
from eureka_lab.feedback.base import Material
from eureka_lab.feedback.reflection import Reflection
from eureka_lab.loop.loop import Loop
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import (
    Behaviour,
    Candidate,
    Checkpoint,
    Event,
    Signal,
    TrainingResult,
)
from eureka_lab.runs.scores import Trained, Tried, idea_of
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import load_task, task_from_dict
from eureka_lab.trainers.ppo import envs_for

from support.doubles import register
from support.hostile_answers import SHAPES
from support.tasks import tiny_task_dict

register()

ANSWER = "Idea: reward forward speed, keep the torso upright.\n\n```python\nCODE\n```"


def behaviour(length: float, fell: int = 0, at: float = 0.0, x_end: float = 0.0) -> Behaviour:
    """Five evaluation episodes of a hopper-like body."""
    events = [Event(kind="fall", episodes=fell, step=at)] if fell else []
    return Behaviour(
        episodes=5,
        length=length,
        terminated=fell,
        truncated=5 - fell,
        signals=[
            Signal(
                name="rootx (position)", start=0.0, end=x_end, min=0.0, max=x_end, mean=x_end / 2
            ),
            Signal(name="rootz (position)", start=1.25, end=1.2, min=1.1, max=1.3, mean=1.2),
        ],
        action_magnitude=0.4,
        action_at_limits=0.1,
        events=events,
    )


def checkpoint(step: int, fitness: float, **extra) -> Checkpoint:
    values = {
        "step": step,
        "components": {
            "forward": {"mean": step / 1e7, "min": 0.0, "max": 1.0},
            "alive": {"mean": 1.0, "min": 1.0, "max": 1.0},
        },
        "episodes": 40,
        "episode_length": 200.0,
        "reward_return": 100.0,
        "fitness": fitness,
        "eval_env_return": 10.0 * fitness,
        "eval_length": 1000.0,
        "behaviour": behaviour(1000.0, x_end=fitness),
    }
    values.update(extra)
    if "episodes" not in extra:
        values["episodes"] = 5
    return Checkpoint.model_validate(values)


def trained(
    cid: str,
    checkpoints: Sequence[Checkpoint],
    seeds: Sequence[float] | None = None,
    components: Sequence[str] = ("alive", "forward"),
) -> Trained:
    best = choose(checkpoints)
    held = best.fitness if seeds is None else seeds[0]
    it = int(cid.split("/")[0].split("_")[1])
    cand = Candidate(
        id=cid, iteration=it, index=int(cid[-2:]), status="valid", components=list(components)
    )
    result = TrainingResult(
        status="trained",
        fitness=held,
        best_step=best.step,
        eval_episodes=5,
        steps=checkpoints[-1].step,
    )
    estimate = Estimate(tuple(seeds) if seeds else (float(held),), 5)
    return Trained(cand, result, list(checkpoints), estimate)


def tried(t: Trained, idea: str = "an idea") -> Tried:
    return Tried(
        id=t.id,
        iteration=t.candidate.iteration,
        idea=idea,
        components=t.candidate.components,
        status="trained",
        fitness=t.result.fitness,
        estimate=t.estimate,
        checkpoints=t.checkpoints,
        best_step=t.result.best_step,
    )


def render(best: Trained, others: Sequence[Trained] = (), **material) -> str:
    everyone = [best, *others]
    values = {
        "ranked": everyone,
        "responses": {t.id: ANSWER for t in everyone},
        "tried": [tried(t) for t in everyone],
        **material,
    }
    messages = Reflection().messages(PromptBook(), Material(**values))
    return messages[-1].content


def steps(n: int, every: int = 100_000) -> list[int]:
    return [every * (i + 1) for i in range(n)]


def pose_answer(lead: str, forward: float, alive: float = 1.0) -> str:
    """An answer whose reward makes :class:`doubles.PoseTrainer` learn the pose
    tanh((forward + alive) / 4): ``lead`` is the prose before the code."""
    return f"""{lead}

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    forward = {forward} * next_obs[:, 0]
    alive = {alive} * np.ones(len(obs))
    return forward + alive, {{"forward": forward, "alive": alive}}
```
"""


HOSTILE_IDEA = "IDEA: \x1b[31m" + "lean " * 4000
ANSWERS = [
    # iteration 0: a stated idea, and an answer that states none
    pose_answer("Idea: reward height, with a small bonus for staying alive.", -0.2),
    pose_answer(
        "Analysis of the feedback:\n\nThis reward pays a large bonus for every step.", 8.0, 4.0
    ),
    # iteration 1: both worse than iteration 0's best (the run does not improve)
    pose_answer(
        "Analysis of the feedback:\n- the pose was too timid.\n**Idea:** lean back hard.", -3.0
    ),
    pose_answer(HOSTILE_IDEA, -1.0),
    # iteration 2 (its prompt is the one read)
    pose_answer("Idea: anything.", 0.0),
    pose_answer("Idea: anything else.", 0.0),
]


@pytest.fixture(scope="module")
def non_improving_run(tmp_path_factory):
    """Three iterations of two rewards each on a Hopper whose fake trainer learns the pose
    each reward sets; iteration 1 does not improve on iteration 0's best. Returns the run
    store and the backend (its prompts)."""
    raw = load_task("hopper").model_dump(mode="json")
    raw.update(
        max_episode_steps=200,
        timesteps=1024,
        checkpoints=4,
        eval_episodes=3,
        trainer={"name": "pose"},
    )
    task = task_from_dict(raw)
    store = RunStore.create(tmp_path_factory.mktemp("run"), "t", {})
    backend = ScriptedBackend(responses=ANSWERS)
    config = LoopConfig(iterations=3, samples=2, executor="inline", final_seeds=1, repair_rounds=0)
    Loop(store, task, config, backend).run()
    return store, backend


# ---------------------------------------------------------------- 7: numbers as numbers
def test_whole_numbers_print_in_full_and_reals_keep_three_digits():
    """Episode lengths of 1000 printed as 1e+03, which reads as a rounding of anything."""
    cps = [checkpoint(s, 1.0 + i, eval_length=1000.0) for i, s in enumerate(steps(3))]
    cps[1] = checkpoint(200_000, 2.0, eval_length=999.6, behaviour=behaviour(1000.0))
    text = render(trained("iter_00/cand_00", cps))
    assert "e+03" not in text and "e+0" not in text
    assert "episode length: [1000, 1000, 1000]" in text
    assert "mean length 1000 steps" in text
    assert "alive: [1, 1, 1]" in text
    assert "forward: [0.01, 0.02, 0.03]" in text


# ------------------------------------------------------- 6: which checkpoints are shown
def test_the_prompt_names_the_checkpoints_it_shows_and_drops_the_near_duplicate():
    """A 300k budget gave 11 checkpoints, the last 1,056 steps after the tenth; the prompt
    called them evenly spaced and dropped one from the middle."""
    at = [30_000 * (i + 1) for i in range(10)] + [301_056]
    cps = [checkpoint(s, float(i)) for i, s in enumerate(at)]
    text = render(trained("iter_00/cand_00", cps))
    assert "evenly spaced" not in text
    assert "11 checkpoints; 10 of them are shown" in text
    shown = [s for s in at if s != 300_000]
    assert "checkpoint step: [" + ", ".join(str(s) for s in shown) + "]" in text
    assert "task score: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]" in text


def test_evenly_spaced_checkpoints_are_called_so_with_their_spacing():
    cps = [checkpoint(s, float(i)) for i, s in enumerate(steps(4, every=25_000))]
    text = render(trained("iter_00/cand_00", cps))
    assert "4 checkpoints; all are shown" in text and "(every 25000 steps)" in text
    assert "checkpoint step: [25000, 50000, 75000, 100000]" in text


# --------------------------------------------------- 5: one env count in both messages
def test_the_system_and_task_messages_give_the_same_env_count(tmp_path):
    """The system message said 32 parallel environments, the task '8 to 128, chosen from
    the budget'; both now say the trainer's count for this run's budget."""
    task = task_from_dict(tiny_task_dict(timesteps=300_000, trainer={"name": "ppo"}))
    store = RunStore.create(tmp_path, "t", {"task": task.model_dump(mode="json")})
    loop = Loop(store, task, LoopConfig(executor="inline"), ScriptedBackend(responses=[]))
    system, user = (m.content for m in loop._opening())
    expected = envs_for(300_000, 64)
    assert expected not in (8, 128)  # chosen from the budget, not a bound of the range
    said = {int(n) for n in re.findall(r"(\d+) parallel environments", system + user)}
    assert said == {expected}
    assert f"{expected} parallel environments" in system
    assert f"{expected} parallel environments" in user
    assert "chosen from the budget" not in user


# -------------------------------------------------- 8: a score without a stated unit
def test_a_task_without_a_score_description_says_its_unit_is_not_given(tmp_path):
    def task_message(**overrides) -> str:
        task = task_from_dict(tiny_task_dict(trainer={"name": "fake"}, **overrides))
        store = RunStore.create(tmp_path / str(len(overrides)), "t", {})
        loop = Loop(store, task, LoopConfig(executor="inline"), ScriptedBackend(responses=[]))
        return loop._opening()[1].content

    silent = task_message()
    assert "The task score's unit is not given" in silent
    assert "judge a score by the behaviour it comes with and by its trend" in silent
    described = task_message(fitness_description="metres travelled forward in 1000 steps")
    assert "The task score: metres travelled forward in 1000 steps" in described
    assert "unit is not given" not in described


# ------------------------------------------------------------ 1: the idea of each attempt
def attempt_line(text: str, cid: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"- {cid} "))


def test_the_table_shows_the_idea_each_answer_states(non_improving_run):
    """From iteration 1 every answer opened with "Analysis of the feedback:", which the
    table showed as its idea."""
    store, backend = non_improving_run
    system = backend.prompts[0].messages[0].content
    third = backend.prompts[2].messages[-1].content
    assert "Start your answer with one line `Idea: ...`" in system
    assert "Start your answer with the line `Idea: ...`" in third
    assert "Analysis of the feedback" not in third
    ideas = {
        "iter_00/cand_00": "idea: reward height, with a small bonus for staying alive.",
        "iter_00/cand_01": "idea: This reward pays a large bonus for every step.",
        "iter_01/cand_00": "idea: lean back hard.",
    }
    for cid, idea in ideas.items():
        assert idea in attempt_line(third, cid)
    hostile = attempt_line(third, "iter_01/cand_01")
    assert "idea: \\u001b[31mlean lean" in hostile and "\x1b" not in hostile
    assert len(hostile) < 600 and "more characters cut" in hostile


IDEA_SHAPES = {
    **SHAPES,
    "idea lines": lambda n: "Idea:\n" * (n // 6),
    "one idea line": lambda n: "Idea: " + "x" * (n - 6),
    "colons": lambda n: ":" * n,
    "heading lines": lambda n: "#" * 50 + "\n" * (n // 51),
    "analysis lines": lambda n: "Analysis of it\n" * (n // 15),
}


@pytest.mark.parametrize("shape", IDEA_SHAPES)
def test_reading_the_idea_is_linear_in_the_answer(shape):
    text = IDEA_SHAPES[shape](MAX_ANSWER_CHARS)
    started = time.process_time()
    idea = idea_of(text)
    assert time.process_time() - started < 0.5
    assert len(idea) < 200 and "\n" not in idea


# ------------------------------------------------- 4: reward hacking, like with like
def hacking_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "Possible reward hacking" in line]


def test_a_return_that_grows_with_longer_episodes_is_not_called_hacking():
    """The alert compared a training return that grew with longer training episodes
    (467 to 2,230) with an evaluation score whose episodes got shorter."""
    lengths = [100, 150, 200, 300, 400, 480]
    cps = [
        checkpoint(
            s,
            fitness=3.0 - 0.4 * i,
            episode_length=float(lengths[i]),
            reward_return=4.67 * lengths[i],
            eval_length=300.0 - 40 * i,
        )
        for i, s in enumerate(steps(6))
    ]
    assert cps[3].reward_return == 1401 and cps[5].reward_return > 2230
    assert hacking_lines(render(trained("iter_00/cand_00", cps))) == []


def test_reward_that_rises_per_step_while_the_score_falls_is_shown_with_its_series():
    cps = [
        checkpoint(
            s,
            fitness=3.0 - 0.4 * i,
            episode_length=200.0,
            reward_return=200.0 * (1.0 + 0.5 * i),
            eval_length=250.0,
        )
        for i, s in enumerate(steps(6))
    ]
    text = render(trained("iter_00/cand_00", cps))
    (line,) = hacking_lines(text)
    assert "from step 400000 to 600000 the reward per step" in line
    assert "rose from 2.5 to 3.5 while the task score went from 1.8 to 1." in line
    assert "  checkpoint step: [400000, 500000, 600000]" in text
    assert "  reward per step (training episodes): [2.5, 3, 3.5]" in text
    assert "  reward's episode return (training episodes): [500, 600, 700]" in text
    assert "  episode length (training episodes): [200, 200, 200]" in text
    assert "  task score (evaluation episodes): [1.8, 1.4, 1]" in text
    assert "  episode length (evaluation episodes): [250, 250, 250]" in text


# ------------------------------------- 2: why each attempt lost, each score with its noise
def test_after_an_iteration_without_improvement_each_attempt_says_why_it_lost(
    non_improving_run,
):
    """The prompt repeated the same best word for word, and the new attempts appeared only
    as a score."""
    store, backend = non_improving_run
    assert store.iteration(1).run_best == store.iteration(0).run_best == "iter_00/cand_00"
    second, third = (p.messages[-1].content for p in backend.prompts[1:3])
    assert third.startswith(
        "None of iteration 1's 2 rewards beat the best so far, iter_00/cand_00 (from iteration 0)."
    )
    assert not second.startswith("None of")
    assert "do not repeat ideas that scored lower" not in third
    lines = third.splitlines()
    for cid in ("iter_01/cand_00", "iter_01/cand_01"):
        row = attempt_line(third, cid)
        assert "held-out episodes" in row and "from the best: beyond noise" in row
        what = lines[lines.index(row) + 1]
        assert what.startswith("  its policy at its best checkpoint (step ")
        assert re.search(r"fell in 3 of 3 episodes at step \d+ on average", what)
        assert re.search(r"mean episode length \d+, 0 of 3 reached the time limit", what)
        assert "moved: rootx (position) " in what
    # The best's own row has no such line: its behaviour is shown in full above it.
    best = attempt_line(third, "iter_00/cand_00")
    assert "(the best)" in best and not lines[lines.index(best) + 1].startswith("  ")


def test_each_score_is_stated_as_what_it_is_with_its_noise(non_improving_run):
    store, backend = non_improving_run
    third = backend.prompts[2].messages[-1].content
    (best,) = [e for e in store.iteration(0).race.entrants if e.id == "iter_00/cand_00"]
    assert len(best.scores) == 3
    assert "The reward function above (iter_00/cand_00) has a task score of 0.235 ± " in third
    assert (
        "its best checkpoint's mean on 3 held-out evaluation episodes (which did not choose "
        "that checkpoint), averaged over 3 training seeds." in third
    )
    assert "score 0.235 ± " in attempt_line(third, "iter_00/cand_00")
    assert "over 3 seeds × 3 held-out episodes (the best)" in attempt_line(third, "iter_00/cand_00")
    assert "A score from one seed is uncertain by about ± " in third


def single_seed_material(noise):
    at = steps(3)
    best = trained("iter_00/cand_00", [checkpoint(s, 5.0 * (i + 1) / 3) for i, s in enumerate(at)])
    near = trained("iter_01/cand_00", [checkpoint(s, 4.5 - 2 + i) for i, s in enumerate(at)])
    far = trained("iter_01/cand_01", [checkpoint(s, 3.0 - 2 + i) for i, s in enumerate(at)])
    return render(best, [near, far], noise=noise)


def test_single_seed_gaps_are_judged_by_the_runs_seed_noise():
    text = single_seed_material(noise=0.3)
    assert "A score from one seed is uncertain by about ± 0.3" in text
    assert (
        "from one training seed, so its spread is not measured; in this run one reward's "
        "score varies by about ± 0.3 from seed to seed." in text
    )
    near, far = (attempt_line(text, c) for c in ("iter_01/cand_00", "iter_01/cand_01"))
    assert "score 4.5 over 1 seed × 5 held-out episodes (-0.5 from the best: within noise)" in near
    assert "score 3 over 1 seed × 5 held-out episodes (-2 from the best: beyond noise)" in far


def test_without_a_known_noise_the_prompt_says_so():
    text = single_seed_material(noise=None)
    assert "No reward has trained on several seeds yet" in text
    assert "(-0.5 from the best: noise unknown)" in attempt_line(text, "iter_01/cand_00")


# -------------------------------------------- 3: a tie in choosing the best checkpoint
def untrained_then_standing(returns):
    """Every checkpoint scored 0; the first (untrained) fell early, the later ones stood
    for the whole episode."""
    fell = behaviour(138.0, fell=5, at=138.0)
    return [
        checkpoint(
            s,
            0.0,
            eval_env_return=r,
            eval_length=138.0 if i == 0 else 1000.0,
            behaviour=fell if i == 0 else behaviour(1000.0),
        )
        for i, (s, r) in enumerate(zip(steps(len(returns)), returns, strict=True))
    ]


def test_when_every_checkpoint_scored_zero_the_prompt_says_so_and_shows_the_chosen_one():
    """An untrained checkpoint was described as the best ("fell in 5 of 5 episodes at
    step 138") while the episode-length row showed the policy later stood 1,000 steps."""
    text = render(trained("iter_00/cand_00", untrained_then_standing([5.0, 40.0, 90.0, 60.0])))
    assert "episode length: [138, 1000, 1000, 1000]" in text
    assert (
        "What the policy did at its best checkpoint (step 300000; every checkpoint scored 0 "
        "on the evaluation episodes, so the score does not tell them apart: this one was "
        "chosen among them by the environment's own return; 5 evaluation episodes, mean "
        "length 1000 steps; 5 of 5 reached the time limit)" in text
    )
    assert "fell or tipped over" not in text and "138 on average" not in text


def test_a_tie_on_the_return_too_goes_to_the_last_checkpoint_and_says_so():
    text = render(trained("iter_00/cand_00", untrained_then_standing([0.0, 0.0, 0.0])))
    assert (
        "(step 300000; every checkpoint scored 0 on the evaluation episodes, so the score does "
        "not tell them apart: this one was chosen as the latest among those tied on the "
        "environment's own return too (the last checkpoint);" in text
    )


def test_a_partial_tie_names_how_many_checkpoints_tied():
    scores, returns = [1.0, 2.0, 2.0, 0.5], [10.0, 25.0, 20.0, 5.0]
    cps = [
        checkpoint(s, f, eval_env_return=r)
        for s, f, r in zip(steps(4), scores, returns, strict=True)
    ]
    text = render(trained("iter_00/cand_00", cps))
    assert (
        "(step 200000; tied at 2 with 1 other checkpoint, chosen among them by the "
        "environment's own return;" in text
    )


def test_without_a_recorded_step_the_behaviour_is_the_chosen_checkpoints():
    cps = [
        checkpoint(s, f, behaviour=behaviour(100.0 * (i + 1)))
        for i, (s, f) in enumerate(zip(steps(3), [1.0, 3.0, 2.0], strict=True))
    ]
    t = trained("iter_00/cand_00", cps)
    old = Trained(t.candidate, t.result.model_copy(update={"best_step": None}), cps, t.estimate)
    assert "best checkpoint (step 200000; 5 evaluation episodes, mean length 200 steps" in render(
        old
    )


def test_every_attempt_of_the_last_iteration_is_listed_however_many_came_before():
    at = steps(2)
    best = trained("iter_00/cand_00", [checkpoint(s, 9.0) for s in at])
    older = [
        trained(f"iter_00/cand_{i:02d}", [checkpoint(s, 8.0) for s in at]) for i in range(1, 20)
    ]
    newest = [
        trained(f"iter_01/cand_{i:02d}", [checkpoint(s, 1.0 + i) for s in at]) for i in range(3)
    ]
    text = render(best, [*older, *newest], noise=0.5)
    for t in newest:
        row = attempt_line(text, t.id)
        lines = text.splitlines()
        assert lines[lines.index(row) + 1].startswith("  its policy at its best checkpoint")
    assert "- iter_00/cand_00 " in text
    assert len([line for line in text.splitlines() if line.startswith("- iter_")]) == 16
