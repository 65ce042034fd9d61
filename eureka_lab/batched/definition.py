"""One env, written once for every batched simulator: the :class:`Definition` protocol.

A definition says what a Gymnasium MuJoCo env computes around its simulator: the
observation, the state a reset starts from, and the reward, termination and ``info`` of a
step, over a batch of simulations. It is written over ``xp``, numpy's names: numpy on the
C simulator (:class:`~eureka_lab.batched.mujoco.MujocoBatch`, float64, equal to Gymnasium),
numpy's names over torch on MuJoCo Warp (:class:`~eureka_lab.batched.warp.WarpBatch`,
float32), so both run the same code.

It declares the MjData fields it reads (``needs``); each simulator hands them over as
(n, ...) arrays on ``sim``, named as in MjData (``sim.qpos``, ``sim.xpos``,
``sim.cfrc_ext``), as the Gymnasium env reads ``self.data`` after ``do_simulation``:

- state fields (``qpos``, ``qvel``, ``ctrl``) are the state after the step;
- derived fields (``xpos``, ``xipos``, ``site_xpos``, ``cinert``, ``cvel``,
  ``qfrc_actuator``, ...) are as ``mj_step`` leaves them: computed during the last
  substep, from the state before it (with RK4, from its last stage's intermediate state);
  after a reset, from the reset state (``mj_forward``);
- post-constraint fields (``cfrc_ext``, ``cfrc_int``, ``cacc``) are what
  ``mj_rnePostConstraint`` computes after ``mj_step``, as Gymnasium calls it; after a
  reset they are zero, as ``mj_resetData`` left them (``mj_forward`` does not compute them).

The arrays are live: the simulator steps them in place. A definition reads them and
returns new arrays; the simulator copies what :meth:`Definition.before` returns.

Keyword arguments are the env class's own, with its defaults (``kw``); a task that passes
one the definition cannot follow (``fixed``, or one the class does not take, such as
``render_mode``) runs on :class:`~eureka_lab.batched.GymBatch` instead, as
:func:`~eureka_lab.batched.make_batched` says once.

A task's own env (a subclass of Gymnasium's ``MujocoEnv``) gets its definition beside the
task file, and the task names it: ``batched: tall_hopper_batched:TallHopper``
(``examples/tall_hopper/``: a Hopper that must keep its torso above ``min_height``, its
definition in 30 lines). A package can instead register one for an env id it ships:
``BATCHED.register("my_package.envs:MyEnv", MyDefinition)``, with ``env_id`` set.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

import numpy as np

Array = Any
"""A numpy array on the C simulator, a torch tensor on MuJoCo Warp."""

POST_CONSTRAINT = frozenset({"cacc", "cfrc_int", "cfrc_ext"})
"""MjData fields that only ``mj_rnePostConstraint`` computes."""

STATE = frozenset({"qpos", "qvel", "act", "ctrl", "qacc_warmstart", "time"})
"""MjData fields a step reads; every other field is derived from them."""


class Draw(Protocol):
    """The random source of a reset: (n, size) arrays for the n simulations restarted
    together. On the C simulator n is 1 and the values are the Gymnasium env's own
    (its ``np_random``, seeded as :class:`~eureka_lab.batched.GymBatch` seeds it), so a
    definition draws call for call as the env's ``reset_model`` does; on MuJoCo Warp they
    come from a torch generator on the device: Gymnasium's distributions, not its stream."""

    def uniform(self, low: float, high: float, size: int) -> Array: ...

    def standard_normal(self, size: int) -> Array: ...

    def until(self, sample: Callable[[], Array], accept: Callable[[Array], Array]) -> Array:
        """``sample()``, drawn again where ``accept`` of it is False ((n,) bool): the
        env's ``while True: ... if ...: break`` rejection loop."""
        ...


class Definition:
    """One env over a batch of simulations, over ``xp``. Subclasses set the class
    attributes and implement :meth:`observe`, :meth:`reset` and :meth:`outcome`."""

    env_id: ClassVar[str] = ""
    """The env as tasks name it (a Gymnasium id, or ``module:Class``), where the definition
    is registered in :data:`~eureka_lab.batched.BATCHED`; a task's own definition, which the
    task names (``batched: module:Class``), needs none."""
    env_class: ClassVar[str | type | None] = None
    """The env class (or ``"module:Class"``), whose keyword arguments the definition follows;
    None: the class of the env the task makes."""
    needs: ClassVar[tuple[str, ...]] = ("qpos", "qvel")
    """The MjData fields it reads."""
    fixed: ClassVar[frozenset[str]] = frozenset({"xml_file"})
    """Keyword arguments of the env class it cannot follow (another model file has other
    bodies, joints and sizes)."""

    def __init__(self, env: Any, kw: dict[str, Any], xp: Any) -> None:
        """``env``: the unwrapped Gymnasium env, as the task makes it (its model, time
        step and initial state); ``kw``: its keyword arguments; ``xp``: numpy's names."""
        self.kw = kw
        self.xp = xp
        self.model = env.model
        self.dt = float(env.dt)
        self.init_qpos = np.array(env.init_qpos, dtype=np.float64)
        self.init_qvel = np.array(env.init_qvel, dtype=np.float64)

    def observe(self, sim: Any) -> Array:
        """The observation, (n, *obs_shape)."""
        raise NotImplementedError

    def reset(self, draw: Draw, qpos: Array, qvel: Array) -> tuple[Array, Array]:
        """The state new episodes start from, as the env's ``reset_model`` sets it, from
        ``qpos`` and ``qvel``: (n, nq) and (n, nv) copies of its initial state."""
        raise NotImplementedError

    def before(self, sim: Any) -> Array | None:
        """What :meth:`outcome` needs from before the step (a position), or None."""
        return None

    def outcome(self, sim: Any, before: Array | None, action: Array) -> tuple[Array, Array, dict]:
        """(reward (n,), terminated (n,) bool, info) after a step with ``action``
        (n, nu), as the env's ``step`` returns them; info holds every key the env's does."""
        raise NotImplementedError

    @classmethod
    def keyword_defaults(cls, env_class: str | type | None = None) -> dict[str, Any]:
        """The env class's keyword arguments and their defaults (``env_class``: the class
        of the env the task makes, for a definition that names none)."""
        named = cls.env_class or env_class
        if named is None:
            raise ValueError(f"{cls.__name__} names no env_class, and no env was given")
        found: Any = named
        if isinstance(named, str):
            module, _, name = named.partition(":")
            found = getattr(importlib.import_module(module), name)
        return _keywords(found)

    @classmethod
    def unsupported(cls, kwargs: Iterable[str], env_class: str | type | None = None) -> list[str]:
        """The keyword arguments among ``kwargs`` this definition cannot follow."""
        known = set(cls.keyword_defaults(env_class)) - cls.fixed
        return sorted(set(kwargs) - known)


def _keywords(env_class: Any) -> dict[str, Any]:
    """The keyword arguments of an env class (or a function that makes the env) and their
    defaults. A subclass that passes ``**kwargs`` on (``class TallHopperEnv(HopperEnv)``)
    also takes its base's, with the base's defaults; never ``MujocoEnv``'s (the model
    file, rendering), which no definition follows."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    def named(params: list[inspect.Parameter]) -> dict[str, Any]:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: p.default for p in params if p.kind in kinds}

    if not isinstance(env_class, type):
        return named(list(inspect.signature(env_class).parameters.values()))
    defaults: dict[str, Any] = {}
    for klass in env_class.__mro__:
        init = vars(klass).get("__init__")
        if klass is MujocoEnv or klass is object:
            break
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        defaults = {**named(params), **defaults}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return defaults


def uniform_noise(
    draw: Draw, scale: float, qpos: Array, qvel: Array, normal_velocity: bool = False
) -> tuple[Array, Array]:
    """The reset most envs make: positions uniform in +-scale about the initial ones,
    velocities uniform too, or normal with std ``scale`` (HalfCheetah, Ant, the double
    pendulum), drawn in that order."""
    qpos = qpos + draw.uniform(-scale, scale, qpos.shape[1])
    if normal_velocity:
        return qpos, qvel + scale * draw.standard_normal(qvel.shape[1])
    return qpos, qvel + draw.uniform(-scale, scale, qvel.shape[1])
