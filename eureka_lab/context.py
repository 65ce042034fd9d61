"""What the model sees about an environment: its source without the reward, the layout of
the observation and action spaces, and the ``info`` keys reward code receives.

The reward is removed from the source on the syntax tree (``ast``), never on text:
docstrings go, methods, attributes, parameters and variables whose names mention a reward,
cost, penalty or bonus go, and so does everything computed from them (transitively).
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np

from eureka_lab.contract import visible_info_key
from eureka_lab.errors import TaskError

HIDDEN_NAME = re.compile(r"(?i)reward|penal|bonus|(?<![a-z])(costs?|rews?)(?![a-z])")
"""Identifiers and strings matching this (after camelCase is split) belong to the reward;
'cost' and 'rew' only as whole words, so ``costheta`` stays."""

_OBS_METHOD = re.compile(r"(?i)obs")
_SKIPPED_METHODS = ("render", "close")
"""Irrelevant to the reward and long: left out of the source."""


@dataclass(frozen=True)
class EnvContext:
    """An environment as described to the model."""

    env_id: str
    source: str
    """Python source of the environment, reward computation removed."""
    observation: str
    """Observation space, then one line per flat observation entry."""
    action: str
    """Action space: shape, bounds or n, and meaning where known."""
    info_keys: tuple[str, ...]
    """The ``info`` keys reward code receives."""

    def to_prompt(self) -> str:
        """Compact markdown for the prompt."""
        keys = ", ".join(f"`{k}`" for k in self.info_keys) or "(none)"
        return (
            f"# Environment `{self.env_id}`\n\n"
            "## Source (the reward computation is removed)\n\n"
            f"```python\n{self.source.rstrip()}\n```\n\n"
            f"## Observation (`obs`, `next_obs`)\n\n{self.observation.rstrip()}\n\n"
            f"## Action (`action`)\n\n{self.action.rstrip()}\n\n"
            f"## Info keys (`info`, arrays with the env as first axis)\n\n{keys}\n"
        )


def build_context(task: Any) -> EnvContext:
    """Context of a task's environment (``task`` is an ``eureka_lab.task.Task``)."""
    env = task.make_env()
    try:
        return context_for_env(env, task.observation_names, env_id=task.env_id)
    finally:
        env.close()


def context_for_env(
    env: Any,
    observation_names: tuple[str, ...] | list[str] | None = None,
    env_id: str | None = None,
) -> EnvContext:
    """Context of any Gymnasium env (registered or a user's class); resets and steps it."""
    import gymnasium as gym

    cls = type(env.unwrapped)
    if env_id is None:
        spec = getattr(env, "spec", None)
        env_id = spec.id if spec is not None else f"{cls.__module__}:{cls.__name__}"
    n_obs = gym.spaces.flatdim(env.observation_space)
    samples, infos = _rollout(env)
    if observation_names is not None:
        names: list[str | None] = list(observation_names)
        if len(names) != n_obs:
            raise TaskError(
                f"{env_id}: {len(names)} observation_names given but the flat observation has "
                f"{n_obs} entries; give exactly {n_obs} names or none."
            )
    else:
        names = _mujoco_names(env, samples) or [None] * n_obs
    return EnvContext(
        env_id=env_id,
        source=env_source(cls),
        observation=_describe_observation(env.observation_space, names, cls),
        action=_describe_action(env, cls),
        info_keys=_info_keys(infos),
    )


# --------------------------------------------------------------------------- source


def env_source(cls: type) -> str:
    """Source of an env class with its module's helpers, reward computation removed."""
    module = inspect.getmodule(cls)
    try:
        tree = ast.parse(inspect.getsource(module)) if module else None
    except (OSError, TypeError):
        tree = None
    top = (
        [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
        if tree
        else []
    )
    if top:
        cls_node = top[0]
    else:
        try:
            cls_node = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
        except (OSError, TypeError):
            return f"# The source of {cls.__module__}.{cls.__qualname__} is not available.\n"
        tree = None
    cls_node.body = [
        n
        for n in cls_node.body
        if not (isinstance(n, ast.FunctionDef) and n.name in _SKIPPED_METHODS)
    ]
    body: list[ast.stmt] = _module_helpers(tree, cls_node) if tree else []
    shown = {n.name for n in body if isinstance(n, ast.ClassDef)}  # whole base classes
    body += _inherited_methods(cls, cls_node, shown)
    body.append(cls_node)
    stripped = strip_reward(ast.Module(body=body, type_ignores=[]))
    return ast.unparse(stripped) + "\n"


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _module_helpers(tree: ast.Module, cls_node: ast.ClassDef) -> list[ast.stmt]:
    """Imports, functions and constants of the module that the class uses (transitively)."""
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if node is cls_node or isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        for name in _bound_names(node):
            defs[name] = node
    needed: set[int] = set()
    todo: list[ast.AST] = [cls_node]
    while todo:
        for n in ast.walk(todo.pop()):
            if isinstance(n, ast.Name) and n.id in defs and id(defs[n.id]) not in needed:
                needed.add(id(defs[n.id]))
                todo.append(defs[n.id])
    return [n for n in tree.body if id(n) in needed]


def _inherited_methods(cls: type, cls_node: ast.ClassDef, shown: set[str]) -> list[ast.stmt]:
    """Stubs of base classes holding methods the class uses but does not define: observation
    methods always, any method of a base class from outside gymnasium. Base classes of the
    same module named in ``shown`` are already there in full."""
    own = {n.name for n in cls_node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    wanted = [a.attr for a in ast.walk(cls_node) if isinstance(a, ast.Attribute)]
    wanted += [m for m in ("step", "reset") if m not in own]
    stubs: dict[type, ast.ClassDef] = {}
    seen: set[str] = set(own)
    while wanted:
        name = wanted.pop(0)
        if name in seen:
            continue
        seen.add(name)
        owner = next((b for b in cls.__mro__[1:] if name in vars(b)), None)
        if owner is None or owner.__module__.split(".")[0] in ("builtins", "abc", "typing"):
            continue
        if owner.__module__ == cls.__module__ and owner.__name__ in shown:
            continue
        if owner.__module__.startswith("gymnasium.") and not _OBS_METHOD.search(name):
            continue
        fn = vars(owner)[name]
        fn = getattr(fn, "fget", None) or getattr(fn, "__func__", None) or fn
        if not inspect.isfunction(fn):
            continue
        try:
            node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        except (OSError, TypeError, SyntaxError):
            continue
        stub = stubs.setdefault(
            owner,
            ast.ClassDef(name=owner.__name__, bases=[], keywords=[], body=[], decorator_list=[]),
        )
        stub.body.append(node)
        wanted += [a.attr for a in ast.walk(node) if isinstance(a, ast.Attribute)]
    return list(stubs.values())


def strip_reward(tree: ast.Module) -> ast.Module:
    """A copy of ``tree`` without docstrings and without anything reward-related."""
    names: set[str] = set()
    attrs: set[str] = set()
    while True:  # removal propagates across methods: repeat until nothing new is removed
        before = (len(names), len(attrs))
        stripper = _Stripper(names, attrs)
        out = ast.Module(body=stripper.block(copy.deepcopy(tree).body), type_ignores=[])
        names, attrs = stripper.names, stripper.attrs
        if (len(names), len(attrs)) == before:
            return ast.fix_missing_locations(out)


def _hidden(name: str | None) -> bool:
    return bool(name) and bool(HIDDEN_NAME.search(re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)))


def _is_str(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


class _Stripper(ast.NodeTransformer):
    """Removes reward statements; ``names``/``attrs`` collect what was removed."""

    def __init__(self, names: set[str], attrs: set[str]) -> None:
        self.names, self.attrs = set(names), set(attrs)

    # -- queries
    def refs(self, node: ast.AST | None) -> bool:
        """Whether ``node`` mentions a removed or reward-like name, attribute or string."""
        if node is None:
            return False
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and (n.id in self.names or _hidden(n.id)):
                return True
            if isinstance(n, ast.Attribute) and (n.attr in self.attrs or _hidden(n.attr)):
                return True
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and _hidden(n.value):
                return True
            if isinstance(n, ast.keyword) and _hidden(n.arg):
                return True
        return False

    @staticmethod
    def _hidden_arg(node: ast.AST) -> bool:
        """A call argument that is itself a reward-like name (``forward_reward_weight``)."""
        if isinstance(node, ast.Starred):
            node = node.value
        return (isinstance(node, ast.Name) and _hidden(node.id)) or (
            isinstance(node, ast.Attribute) and _hidden(node.attr)
        )

    def remove_target(self, target: ast.AST) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                self.names.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                self.attrs.add(n.attr)

    # -- expressions
    def visit_Dict(self, node: ast.Dict) -> ast.Dict:
        self.generic_visit(node)
        kept = [
            (k, v)
            for k, v in zip(node.keys, node.values, strict=True)
            if not self.refs(k) and not self.refs(v)
        ]
        node.keys, node.values = [k for k, _ in kept], [v for _, v in kept]
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        node.args = [a for a in node.args if not self._hidden_arg(a)]
        node.keywords = [
            k for k in node.keywords if not _hidden(k.arg) and not self._hidden_arg(k.value)
        ]
        return node

    def expr(self, node: ast.expr) -> ast.expr:
        return self.visit(node)

    # -- statements
    def block(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if _is_str(stmt):
                continue  # docstrings and bare strings
            out.extend(self.stmt(stmt))
        return out

    def stmt(self, s: ast.stmt) -> list[ast.stmt]:  # noqa: C901 - one case per statement kind
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            if _hidden(s.name) or s.name in self.attrs or s.name in self.names:
                self.names.add(s.name)
                self.attrs.add(s.name)
                return []
            self._strip_args(s.args)
            s.decorator_list = [self.expr(d) for d in s.decorator_list]
            s.body = self.block(s.body) or [ast.Expr(ast.Constant(...))]
            return [s]
        if isinstance(s, ast.ClassDef):
            s.body = self.block(s.body) or [ast.Pass()]
            return [s]
        if isinstance(s, ast.Assign):
            return self._assign(s)
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                s.value = self.expr(s.value)
            if self.refs(s.target) or self.refs(s.value):
                self.remove_target(s.target)
                return []
            return [s]
        if isinstance(s, ast.AugAssign):
            s.value = self.expr(s.value)
            if self.refs(s.target) or self.refs(s.value):
                self.remove_target(s.target)
                return []
            return [s]
        if isinstance(s, ast.Return):
            if s.value is not None:
                s.value = self.expr(s.value)
                if isinstance(s.value, ast.Tuple):
                    s.value.elts = [ast.Constant(...) if self.refs(e) else e for e in s.value.elts]
                elif self.refs(s.value):
                    s.value = ast.Constant(...)
            return [s]
        if isinstance(s, ast.If | ast.While | ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            head = [getattr(s, f) for f in ("test", "iter", "target") if hasattr(s, f)]
            head += [i.context_expr for i in getattr(s, "items", [])]
            if any(self.refs(h) for h in head):
                for t in ([s.target] if hasattr(s, "target") else []) + [
                    i.optional_vars for i in getattr(s, "items", []) if i.optional_vars
                ]:
                    self.remove_target(t)
                return []
            return self._compound(s)
        if isinstance(s, ast.Try):
            s.body = self.block(s.body) or [ast.Pass()]
            for h in s.handlers:
                h.body = self.block(h.body) or [ast.Pass()]
            s.orelse, s.finalbody = self.block(s.orelse), self.block(s.finalbody)
            return [s]
        if isinstance(s, ast.Import | ast.ImportFrom | ast.Pass | ast.Break | ast.Continue):
            return [] if isinstance(s, ast.Import | ast.ImportFrom) and self.refs(s) else [s]
        s = self.visit(s)
        return [] if self.refs(s) else [s]

    def _assign(self, s: ast.Assign) -> list[ast.stmt]:
        s.value = self.expr(s.value)
        if self.refs(s.value):
            for t in s.targets:
                self.remove_target(t)
            return []
        targets = []
        for t in s.targets:
            if isinstance(t, ast.Tuple | ast.List) and not all(self.refs(e) for e in t.elts):
                t.elts = [ast.Name("_", ast.Store()) if self.refs(e) else e for e in t.elts]
                targets.append(t)
            elif self.refs(t):
                self.remove_target(t)
            else:
                targets.append(t)
        s.targets = targets
        return [s] if targets else []

    def _compound(self, s: Any) -> list[ast.stmt]:
        s.body = self.block(s.body)
        if hasattr(s, "orelse"):
            s.orelse = self.block(s.orelse)
        if not s.body and not getattr(s, "orelse", None):
            return []
        s.body = s.body or [ast.Pass()]
        return [s]

    def _strip_args(self, args: ast.arguments) -> None:
        positional = args.posonlyargs + args.args
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += args.defaults
        n_posonly = len(args.posonlyargs)
        keep = [(a, d) for a, d in zip(positional, defaults, strict=True) if not _hidden(a.arg)]
        for a in positional:
            if _hidden(a.arg):
                self.names.add(a.arg)
        kept_posonly = sum(1 for a, _ in keep if a in positional[:n_posonly])
        args.posonlyargs = [a for a, _ in keep[:kept_posonly]]
        args.args = [a for a, _ in keep[kept_posonly:]]
        kept_defaults = [d for _, d in keep]
        first = next((i for i, d in enumerate(kept_defaults) if d is not None), len(keep))
        args.defaults = [self.expr(d) for d in kept_defaults[first:] if d is not None]
        kw = [
            (a, d)
            for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            if not _hidden(a.arg)
        ]
        args.kwonlyargs = [a for a, _ in kw]
        args.kw_defaults = [d if d is None else self.expr(d) for _, d in kw]
        for star in ("vararg", "kwarg"):
            a = getattr(args, star)
            if a is not None and _hidden(a.arg):
                self.names.add(a.arg)
                setattr(args, star, None)


# --------------------------------------------------------------------------- spaces


def _rollout(env: Any, steps: int = 3, seed: int = 0) -> tuple[list[tuple], list[dict]]:
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


def _info_keys(infos: list[dict]) -> tuple[str, ...]:
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


def _mujoco_names(env: Any, samples: list[tuple]) -> list[str | None] | None:
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
    lines = [ln for ln in m.group(1).strip().splitlines() if not _hidden(ln)]
    return "\n".join(lines).strip()


def _describe_observation(space: Any, names: list[str | None], cls: type) -> str:
    import gymnasium as gym

    flat = gym.spaces.flatten_space(space)
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


def _describe_action(env: Any, cls: type) -> str:
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
