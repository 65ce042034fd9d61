"""What a policy did, summarised task-agnostically from evaluation episodes (in the
evaluator: no reward code, no fitness function): each named observation entry and, for
MuJoCo envs, the root of the simulated body (position, height, orientation, total
rotation); how episodes ended; how the actions were used; and notable events (a fall, a
flip, standing still). The feedback shows it to the model, most informative first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eureka_lab.runs.records import MAX_SIGNALS, Behaviour, Event, EventKind, Signal
from eureka_lab.task.episode import Episode

AT_LIMIT = 0.02
"""An action entry within this share of its range from a bound counts as at the limit."""
STILL_SPEED = 0.05
"""A root that moves slower than this (distance units per second, on average) stands still."""


@dataclass(frozen=True)
class Layout:
    """Where the root of a MuJoCo body sits in ``qpos``, and the control time step."""

    root: list[tuple[str, int, str]]
    """(joint name, qpos index, "slide" | "hinge") of the root joints."""
    dt: float | None


def layout(env: Any) -> Layout:
    """The root joints of a MuJoCo env's body: slide and hinge joints attached to the world's
    first child body (rootx, rootz, rooty for the planar walkers), or a free joint's position.
    Empty for other envs. ``env``: a Gymnasium env, or anything with its ``model`` and
    ``dt`` (a batched rollout)."""
    u = getattr(env, "unwrapped", env)
    model = getattr(u, "model", None)
    dt = getattr(u, "dt", None)
    if model is None or not hasattr(model, "jnt_type"):
        return Layout([], dt)
    import mujoco

    root_body = None
    root: list[tuple[str, int, str]] = []
    for j in range(model.njnt):
        body = int(model.jnt_bodyid[j])
        if root_body is None:
            root_body = body
        if body != root_body:
            break
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
        kind = int(model.jnt_type[j])
        adr = int(model.jnt_qposadr[j])
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            root += [(f"{name}.{axis}", adr + k, "slide") for k, axis in enumerate("xyz")]
        elif kind == mujoco.mjtJoint.mjJNT_SLIDE:
            root.append((name, adr, "slide"))
        elif kind == mujoco.mjtJoint.mjJNT_HINGE:
            root.append((name, adr, "hinge"))
    return Layout(root, float(dt) if dt is not None else None)


def _signal(name: str, series: Sequence[np.ndarray]) -> Signal:
    return Signal(
        name=name,
        start=float(np.mean([s[0] for s in series])),
        end=float(np.mean([s[-1] for s in series])),
        min=float(np.mean([s.min() for s in series])),
        max=float(np.mean([s.max() for s in series])),
        mean=float(np.mean([s.mean() for s in series])),
    )


def _says_success(episode: Episode) -> bool:
    """Whether the env's own info says the episode succeeded (``is_success`` at its end,
    as Gymnasium-Robotics and goal-conditioned envs report it)."""
    flags = episode.infos.get("is_success")
    return flags is not None and len(flags) > 0 and bool(np.ravel(flags[-1]).any())


def summarise(
    episodes: Sequence[Episode],
    where: Layout,
    observation_names: Sequence[str] | None = None,
    action_space: Any = None,
    time_limit: int | None = None,
    succeeded: Sequence[bool] | None = None,
) -> Behaviour:
    """A :class:`Behaviour` of ``episodes`` (at least one). ``succeeded``: whether the task
    counts each episode a success (its fitness against its success threshold), where it
    says."""
    lengths = [ep.length for ep in episodes]
    terminated = [ep for ep in episodes if ep.terminated]
    signals: list[Signal] = []
    events: list[Event] = []
    if terminated and (time_limit is None or min(lengths) < time_limit):
        # An episode the env ended is at its goal where the task (or the env's own
        # ``is_success`` info) says it succeeded. Otherwise a simulated body with a root
        # that can rise and fall (a second slide axis: height) fell or tipped over; any
        # other env ended it by its own condition.
        wins = list(succeeded) if succeeded is not None else [False] * len(episodes)
        goal = [
            ep
            for ep, won in zip(episodes, wins, strict=True)
            if ep.terminated and (won or _says_success(ep))
        ]
        rest = [ep for ep in terminated if not any(ep is g for g in goal)]
        fell = len([k for _, _, k in where.root if k == "slide"]) >= 2
        ends: list[tuple[EventKind, list[Episode]]] = [
            ("goal", goal),
            ("fall" if fell else "terminated", rest),
        ]
        for how, eps in ends:
            if eps:
                step = float(np.mean([ep.length for ep in eps]))
                events.append(Event(kind=how, episodes=len(eps), step=step))
    qpos = [ep.qpos for ep in episodes if ep.qpos is not None]
    if len(qpos) == len(episodes):  # the simulator's state: every episode has it, or none
        forward = next((i for _, i, k in where.root if k == "slide"), None)
        for name, index, kind in where.root:
            series = [q[:, index] for q in qpos]
            signals.append(
                _signal(f"{name} ({'position' if kind == 'slide' else 'angle'})", series)
            )
            change = [float(s[-1] - s[0]) for s in series]
            if kind == "hinge":
                turns = [c / (2 * math.pi) for c in change]
                flipped = sum(abs(t) >= 1 for t in turns)
                if flipped:
                    events.append(Event(kind="flip", episodes=flipped, value=float(np.mean(turns))))
            elif index == forward and where.dt:  # the first slide axis: forward
                speeds = [abs(c) / (n * where.dt) for c, n in zip(change, lengths, strict=True)]
                still = [c for c, v in zip(change, speeds, strict=True) if v < STILL_SPEED]
                if still:
                    events.append(
                        Event(kind="still", episodes=len(still), value=float(np.mean(still)))
                    )
    obs = [np.asarray(ep.observations, dtype=np.float64) for ep in episodes]
    if obs[0].ndim == 2:
        names = list(observation_names or [])
        entries = []
        for i in range(obs[0].shape[1]):
            name = names[i] if i < len(names) else f"obs[{i}]"
            sig = _signal(name, [o[:, i] for o in obs])
            entries.append((sig.max - sig.min, sig))
        entries.sort(key=lambda e: -e[0])  # what changed most first
        signals += [sig for _, sig in entries]
    magnitude = at_limits = None
    actions = [np.asarray(ep.actions, dtype=np.float64) for ep in episodes if ep.length]
    low, high = getattr(action_space, "low", None), getattr(action_space, "high", None)
    if actions and low is not None and high is not None:
        stacked = np.concatenate([a.reshape(len(a), -1) for a in actions])
        span = (
            np.asarray(high, dtype=np.float64).ravel() - np.asarray(low, dtype=np.float64).ravel()
        )
        magnitude = float(np.mean(np.abs(stacked)))
        near = (stacked <= np.ravel(low) + AT_LIMIT * span) | (
            stacked >= np.ravel(high) - AT_LIMIT * span
        )
        at_limits = float(np.mean(near))
    return Behaviour(
        episodes=len(episodes),
        length=float(np.mean(lengths)),
        terminated=len(terminated),
        truncated=sum(ep.truncated for ep in episodes),
        signals=signals[:MAX_SIGNALS],
        action_magnitude=magnitude,
        action_at_limits=at_limits,
        events=events[:3],
    )
