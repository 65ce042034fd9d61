"""The evaluator's behaviour summary for known scripted policies on real MuJoCo envs, and
the feedback prompt that shows it (with the reward-hacking note) within its size bound."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from eureka_lab.evaluation.behaviour import layout, summarise
from eureka_lab.evaluation.evaluator import rollout
from eureka_lab.feedback.reflection import reflection, reward_hacking
from eureka_lab.prompt.templates import PromptBook
from eureka_lab.task.episode import Episode
from eureka_lab.task.load import load_task


def _episodes(task_name: str, act, n: int = 3):
    task = load_task(task_name)
    envs = [task.make_env() for _ in range(n)]
    eps = rollout(envs, act, list(range(n)))
    env = envs[0]
    return task, env, eps


def test_an_episode_that_ends_at_its_goal_is_not_a_fall():
    task, env, eps = _episodes("mountain_car", lambda obs: np.where(obs[:, 1] >= 0, 2, 0))
    b = summarise(eps, layout(env), task.observation_names, env.action_space, 200)
    assert [(e.kind, e.episodes) for e in b.events] == [("terminated", 3)]
    assert b.action_magnitude is None  # discrete actions


def test_an_episode_the_task_counts_a_success_reached_the_goal():
    """MountainCar ends its episode at the flag: with the task's success threshold that is
    "reached the goal", not "ended early", wherever the behaviour is shown."""
    from eureka_lab.evaluation.evaluator import succeeded
    from eureka_lab.feedback.base import behaviour_view
    from eureka_lab.runs.behaviour_text import ends_text, short_line

    task, env, eps = _episodes("mountain_car", lambda obs: np.where(obs[:, 1] >= 0, 2, 0))
    wins = succeeded(task, eps)
    assert wins == [True, True, True]
    b = summarise(eps, layout(env), task.observation_names, env.action_space, 200, wins)
    (goal,) = b.events
    assert (goal.kind, goal.episodes) == ("goal", 3)
    assert ends_text(b) == "3 of 3 reached the goal"
    assert "reached the goal (a success) in 3 of 3 episodes, at step" in str(b)
    assert short_line(b).startswith(f"{b.length:.3g} steps per episode; 3 of 3 reached the goal")
    text = PromptBook().render(
        "feedback",
        **reflection(_checkpoints(2, reward_return=lambda i: 1.0, fitness=lambda i: 1.4)),
        behaviour=behaviour_view(b),
        behaviour_step=1000,
        tie=None,
        best={"id": "iter_00/cand_00", "iteration": 0, "score": None},
        noise=None,
        improved=True,
        last_iteration=0,
        last_attempts=1,
        tried=[],
    )
    assert "3 of 3 reached the goal)" in text and "It reached the goal" in text
    assert "ended early" not in text


def test_the_env_saying_success_is_the_goal_too():
    ep = Episode(
        observations=np.zeros((4, 2)),
        actions=np.zeros((3, 1)),
        rewards=np.zeros(3),
        infos={"is_success": np.array([0.0, 0.0, 1.0])},
        qpos=None,
        qvel=None,
        terminated=True,
        truncated=False,
    )
    from eureka_lab.evaluation.behaviour import Layout

    b = summarise([ep, replace(ep, infos={"is_success": np.zeros(3)})], Layout([], None), None)
    assert [(e.kind, e.episodes) for e in b.events] == [("goal", 1), ("terminated", 1)]


def test_a_policy_that_falls_reports_the_fall_and_its_step():
    """Hopper pushing every joint to its limit falls over within a few dozen steps."""
    task, env, eps = _episodes("hopper", lambda obs: np.ones((len(obs), 3)))
    b = summarise(eps, layout(env), task.observation_names, env.action_space, 1000)
    lengths = [ep.length for ep in eps]
    assert all(ep.terminated for ep in eps) and max(lengths) < 200
    (fall,) = [e for e in b.events if e.kind == "fall"]
    assert fall.episodes == 3 and fall.step == pytest.approx(np.mean(lengths))
    assert b.terminated == 3 and b.truncated == 0
    assert b.action_at_limits == 1.0 and b.action_magnitude == pytest.approx(1.0)
    names = [s.name for s in b.signals]
    assert names[:3] == ["rootx (position)", "rootz (position)", "rooty (angle)"]
    height = b.signals[1]
    assert height.start == pytest.approx(np.mean([ep.qpos[0, 1] for ep in eps]))
    assert height.end == pytest.approx(np.mean([ep.qpos[-1, 1] for ep in eps]))


def test_a_policy_that_does_nothing_stands_still():
    task = load_task("half_cheetah")
    env = task.make_env()
    eps = rollout([env], lambda obs: np.zeros((len(obs), 6)), [0])
    b = summarise(eps, layout(env), task.observation_names, env.action_space, 1000)
    assert b.truncated == 1 and b.length == 1000
    assert [e.kind for e in b.events] == ["still"]
    assert abs(b.events[0].value) < 0.05 * 1000 * env.unwrapped.dt
    assert b.action_magnitude == 0.0 and b.action_at_limits == 0.0


def test_a_flip_is_counted_in_turns():
    turns = 1.5
    qpos = np.zeros((11, 3))
    qpos[:, 2] = np.linspace(0, turns * 2 * math.pi, 11)
    qpos[:, 0] = np.linspace(0, 5, 11)
    ep = Episode(
        observations=np.zeros((11, 2)),
        actions=np.zeros((10, 1)),
        rewards=np.zeros(10),
        infos={},
        qpos=qpos,
        qvel=np.zeros((11, 3)),
        terminated=False,
        truncated=True,
    )
    from eureka_lab.evaluation.behaviour import Layout

    where = Layout([("rootx", 0, "slide"), ("rootz", 1, "slide"), ("rooty", 2, "hinge")], 0.05)
    b = summarise([ep], where, None, None, 10)
    assert [(e.kind, e.value) for e in b.events] == [("flip", pytest.approx(turns))]


def _checkpoints(n, reward_return, fitness, components=None):
    comps = components or {"run": lambda i: 1.0 + i, "alive": lambda i: 1.0}
    return [
        {
            "step": 100 * (i + 1),
            "components": {k: {"mean": f(i), "min": f(i), "max": f(i)} for k, f in comps.items()},
            "fitness": fitness(i),
            "reward_return": reward_return(i),
            "episode_length": 50.0,
            "eval_length": 50.0,
        }
        for i in range(n)
    ]


def test_reward_hacking_is_named_with_its_numbers():
    cps = _checkpoints(8, reward_return=lambda i: 10.0 * i, fitness=lambda i: 3.0 - 0.1 * i)
    (note,) = reward_hacking(cps)
    assert note["kind"] == "rising_reward"
    assert (note["reward_from"], note["reward_to"]) == ("0.8", "1.4")  # per step
    honest = _checkpoints(8, reward_return=lambda i: 10.0 * i, fitness=lambda i: 1.0 + i)
    assert reward_hacking(honest) == []


def test_the_feedback_prompt_shows_behaviour_and_hacking_within_its_bound():
    task, env, eps = _episodes("hopper", lambda obs: np.ones((len(obs), 3)), n=5)
    behaviour = summarise(eps, layout(env), task.observation_names, env.action_space, 1000)
    from eureka_lab.feedback.base import behaviour_view

    cps = _checkpoints(10, reward_return=lambda i: 10.0 * i, fitness=lambda i: 0.5)
    text = PromptBook().render(
        "feedback",
        **reflection(cps),
        behaviour=behaviour_view(behaviour),
        behaviour_step=1000,
        tie=None,
        best={"id": "iter_00/cand_00", "iteration": 0, "score": None},
        noise=None,
        improved=True,
        last_iteration=0,
        last_attempts=1,
        tried=[],
    )
    assert "It fell or tipped over (the episode was terminated) in 5 of 5 episodes, at step" in text
    assert "rootz (position): start 1.25" in text
    assert "100% of action entries at their limits" in text
    assert "Possible reward hacking: from step 600 to 1000 the reward per step" in text
    assert "`alive` is a constant bonus" in text and "barely changed" not in text
    assert len(text) < 6000
