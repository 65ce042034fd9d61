"""The layout of an environment as described to the model: what each observation and action
entry means (MuJoCo joints and actuators, or the class docstring), and the ``info`` keys
reward code receives, found by resetting the env and taking a few random steps."""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np

from eureka_lab.prompt.reward_removal import is_hidden
from eureka_lab.reward.contract import visible_info_key


def rollout(env: Any, steps: int = 3, seed: int = 0) -> tuple[list[tuple], list[dict]]:
    """Reset and take random steps: (flat obs, qpos, qvel) samples and the step infos."""
    import gymnasium as gym

    def sample(obs: Any) -> tuple:
        data = getattr(env.unwrapped, "data", None)
        qpos = getattr(data, "qpos", None)
        qvel = getattr(data, "qvel", None)
        flat = np.asarray(gym.spaces.flatten(env.observation_space, obs), dtype=np.float64)
        copies = [None if q is None else np.array(q, dtype=np.float64) for q in (qpos, qvel)]
        return (flat, *copies)

    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    samples, infos = [sample(obs)], []
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        samples.append(sample(obs))
        infos.append(info)
        if terminated or truncated:
            obs, _ = env.reset()
            samples.append(sample(obs))
    return samples, infos


def info_keys(infos: list[dict]) -> tuple[str, ...]:
    if not infos:
        return ()
    keys = set(infos[0]).intersection(*infos[1:])
    out = []
    for k in sorted(keys):
        if not isinstance(k, str) or not visible_info_key(k):
            continue
        try:
            np.asarray([i[k] for i in infos], dtype=np.float64)
        except (TypeError, ValueError):
            continue
        out.append(k)
    return tuple(out)


_FREE_POS, _FREE_VEL = ("x", "y", "z", "qw", "qx", "qy", "qz"), ("vx", "vy", "vz", "wx", "wy", "wz")
_BALL_POS, _BALL_VEL = ("qw", "qx", "qy", "qz"), ("wx", "wy", "wz")
_JOINT_TYPES = {0: "free", 1: "ball", 2: "slide", 3: "hinge"}


def _joint_labels(model: Any, kind: str) -> list[str]:
    """'qpos[j] name (type joint)' for each qpos (or qvel) index of a MuJoCo model."""
    size = model.nq if kind == "qpos" else model.nv
    adr = model.jnt_qposadr if kind == "qpos" else model.jnt_dofadr
    labels = [f"{kind}[{j}]" for j in range(size)]
    for k in range(model.njnt):
        jtype = int(model.jnt_type[k])
        name = model.joint(k).name or f"joint{k}"
        parts = {0: (_FREE_POS, _FREE_VEL), 1: (_BALL_POS, _BALL_VEL)}.get(jtype, (("",), ("",)))
        for off, part in enumerate(parts[0] if kind == "qpos" else parts[1]):
            j = int(adr[k]) + off
            suffix = f" {part}" if part else ""
            labels[j] = f"{kind}[{j}] {name}{suffix} ({_JOINT_TYPES.get(jtype, '?')} joint)"
    return labels


def mujoco_names(env: Any, samples: list[tuple]) -> list[str | None] | None:
    """Name observation entries by matching their values to qpos/qvel entries."""
    u = env.unwrapped
    if samples[0][1] is None or samples[0][2] is None or not hasattr(u, "model"):
        return None
    obs = np.stack([s[0] for s in samples])
    names: list[str | None] = [None] * obs.shape[1]
    used: set[str] = set()
    for kind, col in (("qpos", 1), ("qvel", 2)):
        q = np.stack([s[col] for s in samples])
        labels = _joint_labels(u.model, kind)
        match = np.all(np.isclose(obs[:, :, None], q[:, None, :], rtol=0, atol=1e-9), axis=0)
        for i, j in zip(*np.nonzero(match), strict=True):
            if names[i] is None and labels[j] not in used:
                names[i] = labels[j]
                used.add(labels[j])
    return names


def _fmt(v: float) -> str:
    return "inf" if v == np.inf else "-inf" if v == -np.inf else f"{v:.4g}"


def _doc_section(cls: type, title: str) -> str:
    """A '## <title>' section of the class docstring, without lines about the reward."""
    doc = inspect.getdoc(cls) or ""
    m = re.search(rf"^#+ *{title}\s*$(.*?)(?=^#+ |\Z)", doc, re.M | re.S | re.I)
    if not m:
        return ""
    lines = [ln for ln in m.group(1).strip().splitlines() if not is_hidden(ln)]
    return "\n".join(lines).strip()


def describe_observation(space: Any, names: list[str | None], cls: type) -> str:
    import gymnasium as gym

    flat = gym.spaces.flatten_space(space)
    assert isinstance(flat, gym.spaces.Box)  # a space with a flat dimension flattens to a Box
    low, high = np.broadcast_to(flat.low, flat.shape), np.broadcast_to(flat.high, flat.shape)
    uniform = bool(np.all(low == low[0]) and np.all(high == high[0])) if flat.shape[0] else True
    head = f"{space}, flattened to {flat.shape[0]} entries of {flat.dtype}"
    if uniform and flat.shape[0]:
        head += f", all in [{_fmt(low[0])}, {_fmt(high[0])}]"
    lines = [head + "."]
    for i, name in enumerate(names):
        line = f"obs[{i}]" + (f": {name}" if name else "")
        if not uniform:
            line += f" in [{_fmt(low[i])}, {_fmt(high[i])}]"
        lines.append(line)
    if not any(names) and (doc := _doc_section(cls, "Observation Space")):
        lines += ["", "From the environment's documentation:", "", doc]
    return "\n".join(lines)


def describe_action(env: Any, cls: type) -> str:
    import gymnasium as gym

    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        lines = [f"Discrete: one integer in {space.start}..{space.start + space.n - 1}."]
    elif isinstance(space, gym.spaces.Box):
        low, high = space.low.ravel(), space.high.ravel()
        lines = [f"Box, shape {space.shape}, dtype {space.dtype}."]
        model = getattr(env.unwrapped, "model", None)
        actuators = []
        if model is not None and getattr(model, "nu", None) == low.size:
            for i in range(model.nu):
                name = model.actuator(i).name or f"actuator{i}"
                joint = model.joint(int(model.actuator_trnid[i, 0])).name
                actuators.append(f"actuator {name}" + (f" on joint {joint}" if joint else ""))
        for i in range(low.size):
            what = f": {actuators[i]}" if actuators else ""
            lines.append(f"action[{i}]{what} in [{_fmt(low[i])}, {_fmt(high[i])}]")
        if actuators:
            return "\n".join(lines)
    else:
        lines = [f"{space}."]
    if doc := _doc_section(cls, "Action Space"):
        lines += ["", "From the environment's documentation:", "", doc]
    return "\n".join(lines)
