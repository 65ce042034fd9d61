"""Evaluation episodes, the fitness contract, and the evaluator.

A task's fitness function scores one finished :class:`Episode` (higher is better)::

    def fitness(episode: Episode) -> float

It is trusted task code: it sees the env's own rewards, every ``info`` key and, for MuJoCo
envs, the simulator state (``qpos``, ``qvel``) at every step. Reward code never sees it.

:func:`evaluate` is the evaluator: it runs in a process that never imports or executes reward
code, rebuilds each checkpoint's policy from plain arrays, rolls it out on fixed-seed
episodes and scores it. The fitness that selects candidates comes only from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from eureka_lab.reward.contract import stack_infos
from eureka_lab.runs.records import Behaviour, Evaluation
from eureka_lab.task.episode import Episode, env_return
from eureka_lab.task.model import Task
from eureka_lab.trainers.base import Trainer

EVAL_SEED_BASE = 1_000_000
"""Evaluation episodes use seeds EVAL_SEED_BASE + i, the same for every candidate: they
choose a training's best checkpoint."""
HELD_OUT_SEED_BASE = 2_000_000
"""The chosen checkpoint is scored again on episodes seeded HELD_OUT_SEED_BASE + i, which
chose nothing: the maximum over checkpoints of noisy means is biased upwards (the winner's
curse), the held-out mean of the one it picked is not."""


def _sim_state(env: Any) -> tuple[np.ndarray, np.ndarray] | None:
    data = getattr(env.unwrapped, "data", None)
    if data is None or not hasattr(data, "qpos"):
        return None
    return np.array(data.qpos, dtype=np.float64), np.array(data.qvel, dtype=np.float64)


def rollout(
    envs: Sequence[Any],
    act: Callable[[np.ndarray], np.ndarray],
    seeds: Sequence[int],
) -> list[Episode]:
    """Run one episode in each env (seeded), acting on all unfinished envs in one batch.

    ``act`` maps a batch of raw observations to a batch of actions.
    """
    n = len(envs)
    obs_lists: list[list[np.ndarray]] = [[] for _ in range(n)]
    act_lists: list[list[np.ndarray]] = [[] for _ in range(n)]
    rew_lists: list[list[float]] = [[] for _ in range(n)]
    info_lists: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    state_lists: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
    ends: list[tuple[bool, bool] | None] = [None] * n
    current = []
    for i, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
        obs, _ = env.reset(seed=int(seed))
        current.append(obs)
        obs_lists[i].append(np.array(obs))
        st = _sim_state(env)
        if st is not None:
            state_lists[i].append(st)
    while any(e is None for e in ends):
        live = [i for i in range(n) if ends[i] is None]
        actions = act(np.stack([current[i] for i in live]))
        for j, i in enumerate(live):
            a = actions[j]
            obs, rew, term, trunc, info = envs[i].step(a)
            current[i] = obs
            obs_lists[i].append(np.array(obs))
            act_lists[i].append(np.array(a))
            rew_lists[i].append(float(rew))
            info_lists[i].append(info)
            st = _sim_state(envs[i])
            if st is not None:
                state_lists[i].append(st)
            if term or trunc:
                ends[i] = (bool(term), bool(trunc))
    episodes = []
    for i in range(n):
        states = state_lists[i]
        end = ends[i]
        assert end is not None  # the loop above ran until every episode ended
        term, trunc = end
        episodes.append(
            Episode(
                observations=np.stack(obs_lists[i]),
                actions=np.stack(act_lists[i]),
                rewards=np.asarray(rew_lists[i], dtype=np.float64),
                infos=stack_infos(info_lists[i]),
                qpos=np.stack([s[0] for s in states]) if states else None,
                qvel=np.stack([s[1] for s in states]) if states else None,
                terminated=term,
                truncated=trunc,
            )
        )
    return episodes


def episode_scores(task: Task, episodes: list[Episode]) -> list[float] | None:
    """The task's fitness of each episode (None for a task that only a person judges)."""
    if not task.has_fitness:
        return None
    fn = task.fitness_fn or env_return
    scores = [float(fn(ep)) for ep in episodes]
    if not all(np.isfinite(scores)):
        raise ValueError(f"the task's fitness function returned a non-finite value: {scores}")
    return scores


def succeeded(task: Task, episodes: list[Episode]) -> list[bool] | None:
    """Whether each episode reached the task's success threshold (None without one)."""
    scores = episode_scores(task, episodes)
    if scores is None or task.success_threshold is None:
        return None
    return [s >= task.success_threshold for s in scores]


def score_episodes(
    task: Task, episodes: list[Episode], step: int, behaviour: Behaviour | None = None
) -> Evaluation:
    """Fitness (mean over episodes), success rate, env return and length of evaluations;
    no fitness (None) for a task that only a person judges."""
    fitness = success = None
    scores = episode_scores(task, episodes)
    if scores is not None:
        fitness = float(np.mean(scores))
        if task.success_threshold is not None:
            success = float(np.mean([s >= task.success_threshold for s in scores]))
    return Evaluation(
        step=step,
        fitness=fitness,
        success_rate=success,
        eval_env_return=float(np.mean([ep.env_return for ep in episodes])),
        eval_length=float(np.mean([ep.length for ep in episodes])),
        eval_episodes=len(episodes),
        behaviour=behaviour,
    )


@dataclass(frozen=True)
class Evaluated:
    """What the evaluator measured: every checkpoint on the choosing episodes, and the
    chosen one again on held-out episodes (None for a task only a person judges)."""

    checkpoints: list[Evaluation]
    held_out: Evaluation | None


class Scored(Protocol):
    """What choosing a checkpoint reads: an :class:`Evaluation`, or a stored checkpoint."""

    step: int
    fitness: float | None
    eval_env_return: float | None


S = TypeVar("S", bound=Scored)


def choose(evaluations: Sequence[S]) -> S:
    """The checkpoint with the highest score on the choosing episodes. Ties (every score 0,
    say, before the policy learns anything) go to the higher return of the env's own
    reward, then to the later checkpoint: never to an untrained policy by its place in the
    list. The last checkpoint where nothing has a score."""
    scored = [e for e in evaluations if e.fitness is not None]
    if not scored:
        return evaluations[-1]
    low = -math.inf
    return max(
        scored,
        key=lambda e: (e.fitness, low if e.eval_env_return is None else e.eval_env_return, e.step),
    )


def evaluate(
    task: Task,
    trainer: Trainer,
    policies: dict[int, dict[str, np.ndarray]],
    episodes: int,
    batched: bool = True,
) -> Evaluated:
    """Score each checkpoint's policy (by step) on ``episodes`` fixed-seed episodes, then
    the best of them on as many held-out episodes. Where the task's env has a batched form
    (and ``batched``), every checkpoint's episodes are rows of one batch stepped in C, and
    the held-out ones of another (:mod:`.batched`): the same episodes as Gymnasium's, in a
    fraction of the time; else Gymnasium's envs, a checkpoint at a time."""
    from eureka_lab.evaluation.batched import has_batched_form

    if batched and has_batched_form(task):
        return _evaluate_batched(task, trainer, policies, episodes)
    from eureka_lab.evaluation.behaviour import layout, summarise

    envs = [task.make_env() for _ in range(episodes)]
    where = layout(envs[0])
    spec = getattr(envs[0], "spec", None)
    limit = task.max_episode_steps or getattr(spec, "max_episode_steps", None)

    def measure(step: int, base: int) -> Evaluation:
        seeds = [base + i for i in range(episodes)]
        eps = rollout(envs, trainer.policy(task, policies[step]), seeds)
        wins = succeeded(task, eps)
        what = summarise(eps, where, task.observation_names, envs[0].action_space, limit, wins)
        return score_episodes(task, eps, step, what)

    try:
        out = [measure(step, EVAL_SEED_BASE) for step in sorted(policies)]
        if not out or not task.has_fitness:
            return Evaluated(out, None)
        return Evaluated(out, measure(choose(out).step, HELD_OUT_SEED_BASE))
    finally:
        for env in envs:
            env.close()


def _evaluate_batched(
    task: Task, trainer: Trainer, policies: dict[int, dict[str, np.ndarray]], episodes: int
) -> Evaluated:
    from eureka_lab.evaluation.batched import BatchedRollout
    from eureka_lab.evaluation.behaviour import layout, summarise

    rollout = BatchedRollout(task)
    where = layout(rollout)

    def score(step: int, eps: list[Episode]) -> Evaluation:
        what = summarise(eps, where, task.observation_names, rollout.action_space, rollout.limit)
        return score_episodes(task, eps, step, what)

    steps = sorted(policies)
    choosing = [EVAL_SEED_BASE + i for i in range(episodes)]
    rounds = rollout.episodes([trainer.policy(task, policies[s]) for s in steps], choosing)
    out = [score(step, eps) for step, eps in zip(steps, rounds, strict=True)]
    if not out or not task.has_fitness:
        return Evaluated(out, None)
    best = choose(out).step
    held = [HELD_OUT_SEED_BASE + i for i in range(episodes)]
    (eps,) = rollout.episodes([trainer.policy(task, policies[best])], held)
    return Evaluated(out, score(best, eps))
