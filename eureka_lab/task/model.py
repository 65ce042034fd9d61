"""Tasks: what to achieve, how success is measured, and the training budget.

A task is a YAML file under ``envs/`` (or anywhere), optionally with a Python module beside
it holding the fitness function and hand-written rewards. References to code are
``module:function`` strings, resolved lazily: ``module`` is first looked up as
``<module>.py`` beside the task file, then as an importable module.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from eureka_lab.core import ast_tools
from eureka_lab.core.errors import EurekaError, TaskError, did_you_mean

ENV_REWARD = "env"
NO_FITNESS = "none"
"""Fitness reference of a task judged only by a person (--feedback human or text)."""
"""Reward reference meaning "the environment's own reward"."""


def data_dir(name: str) -> Path:
    """Folder of shipped data (``envs`` or ``prompts``): in the wheel, else in the checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_data" / name
    return packaged if packaged.is_dir() else package.parent / name


class TrainerChoice(BaseModel):
    """Which trainer trains the candidates, and its settings (validated by that trainer).

    In a task file the settings sit beside the name: ``trainer: {name: sb3, n_envs: 16}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("sb3", description="A registered trainer (see eureka_lab.trainers).")
    settings: dict[str, Any] = Field(default_factory=dict, description="The trainer's settings.")

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "settings" not in data:
            rest = {k: v for k, v in data.items() if k != "name"}
            return {"name": data.get("name", "sb3"), "settings": rest}
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainerChoice:
        from eureka_lab.trainers import TRAINERS

        try:
            cls = TRAINERS.get(self.name)
        except EurekaError as e:
            raise ValueError(str(e)) from None
        try:
            cls.Settings.model_validate(self.settings)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                key = ".".join(str(p) for p in err["loc"])
                if err["type"] == "extra_forbidden":
                    hint = did_you_mean(key, cls.Settings.model_fields) or " Remove it."
                    problems.append(f"unknown {self.name} setting {key!r}.{hint}")
                else:
                    problems.append(f"{self.name} setting {key!r}: {err['msg']}")
            raise ValueError("; ".join(problems)) from None
        return self

    def make(self) -> Any:
        """The trainer, built from these settings."""
        from eureka_lab.trainers import make_trainer

        return make_trainer(self.name, self.settings)


class Task(BaseModel):
    """A reward-design problem: an environment, a behaviour in words, a hidden fitness."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short identifier, used in run names.")
    env_id: str = Field(description="Gymnasium id (e.g. 'HalfCheetah-v5') or 'module:Class'.")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to gym.make.")
    max_episode_steps: int | None = Field(None, ge=1, description="Override the time limit.")
    description: str = Field(description="The behaviour, in words; shown to the model.")
    fitness: str = Field(
        ENV_REWARD,
        description="'module:function' scoring one Episode (higher is better), never shown "
        "to the model; 'env' means the environment's own return; 'none' means the task has "
        "no score and a person judges (--feedback human or text).",
    )
    fitness_description: str | None = Field(
        None,
        description="One public line on what the task score measures and its unit, shown to "
        "the model (the fitness code stays hidden).",
    )
    success_threshold: float | None = Field(
        None, description="An episode with fitness >= this counts as a success."
    )
    timesteps: int = Field(ge=1, description="Default PPO budget per candidate.")
    eval_episodes: int = Field(10, ge=1, description="Evaluation episodes per checkpoint.")
    checkpoints: int = Field(10, ge=1, description="Evenly spaced checkpoints per training.")
    trainer: TrainerChoice = Field(
        default_factory=TrainerChoice, description="The trainer and its settings."
    )
    human_reward: str = Field(
        ENV_REWARD, description="'module:function' in the reward contract, or 'env'."
    )
    sparse_reward: str = Field(
        ENV_REWARD,
        description="The fitness signal as the only reward ('module:function'), or 'env'.",
    )
    seed_rewards: tuple[str, ...] = Field(
        (), description="'module:function' rewards in the contract, seeding the search."
    )
    observation_names: tuple[str, ...] | None = Field(
        None, description="One name per observation entry, for the model's context."
    )
    source_dir: Path | None = Field(
        None, description="Folder that relative code references resolve against."
    )
    job_files: tuple[str, ...] = Field(
        (),
        description="Files or folders beside the task file that training jobs may read (a "
        "custom env's assets, modules it imports late). Everything else there (the fitness, "
        "the human and sparse rewards) stays private: only the orchestrator and the "
        "evaluator read it. A custom env's own module (env_id 'module:Class' beside the "
        "task) is readable without being listed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_ppo_key(cls, data: Any) -> Any:
        """Tasks (and runs) written before the trainer seam had an SB3 ``ppo:`` block."""
        if isinstance(data, dict) and "ppo" in data:
            if "trainer" in data:
                raise ValueError(
                    "both 'ppo' and 'trainer' are set; 'ppo' is the old name of the SB3 "
                    "settings: move them under 'trainer' (trainer: {name: sb3, ...})"
                )
            data = {**data, "trainer": {"name": "sb3", **(data["ppo"] or {})}}
            del data["ppo"]
        return data

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\ "):
            raise ValueError("must be non-empty, without spaces or slashes")
        return v

    @cached_property
    def fitness_fn(self) -> Any:
        if self.fitness in (ENV_REWARD, NO_FITNESS):
            return None
        return resolve_ref(self.fitness, self.source_dir)

    @property
    def has_fitness(self) -> bool:
        """Whether candidates can be scored without a person."""
        return self.fitness != NO_FITNESS

    def reward_source(self, ref: str) -> str | None:
        """Standalone source of a contract reward reference; None for the env's own reward."""
        return None if ref == ENV_REWARD else reward_source(ref, self.source_dir)

    def make_env(self, render_mode: str | None = None, **extra: Any) -> Any:
        """A fresh single Gymnasium environment for this task (``extra``: further keyword
        arguments, e.g. a render size)."""
        kwargs = {**self.env_kwargs, **extra}
        return make_env(self.env_id, kwargs, self.max_episode_steps, render_mode, self.source_dir)

    def job_readable(self) -> list[Path]:
        """What a job that runs reward code may read of the task's folder: the custom env's
        module beside the task, and ``job_files``."""
        if self.source_dir is None:
            return []
        folder = Path(self.source_dir)
        paths = [folder / f for f in self.job_files]
        if _is_class_ref(self.env_id):
            module = folder / (_split_ref(self.env_id)[0].replace(".", "/") + ".py")
            if module.is_file():
                paths.append(module)
        return paths

    def job_private(self) -> list[Path]:
        """What no job that runs reward code may read, even where it lies beneath a
        readable folder: the task's folder (but :meth:`job_readable`) and the built-in
        tasks with their fitness and rewards."""
        private = [data_dir("envs")]
        if self.source_dir is not None:
            private.append(Path(self.source_dir))
        return private

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- environments


def _is_class_ref(env_id: str) -> bool:
    """Whether ``env_id`` names an env class (``module:Class``), not a registered id."""
    return ":" in env_id and env_id.split(":", 1)[1][:1].isupper()


def check_env_id(env_id: str, source_dir: Path | None = None) -> None:
    """Raise TaskError unless ``env_id`` is a registered id or a module:Class importable
    beside the task (``source_dir``) or from the installed packages."""
    import gymnasium as gym

    if _is_class_ref(env_id):
        resolve_ref(env_id, source_dir)
        return
    if env_id not in gym.registry:
        try:
            gym.spec(env_id)  # also imports 'module:id' style namespaces
            return
        except Exception:
            pass
        raise TaskError(
            f"Gymnasium does not know the env id {env_id!r}."
            + did_you_mean(env_id, gym.registry.keys())
            + " Use a registered id (see gymnasium.pprint_registry()) or 'module:Class'."
        )


KNOWN_MUJOCO_WARNINGS = ("compiler attribute 'settotalmass' is deprecated",)
"""Warnings MuJoCo prints for Gymnasium's own model files, which no user can act on."""


@contextlib.contextmanager
def _quiet_known_mujoco_warnings() -> Iterator[None]:
    """Drop only the MuJoCo warnings above while a model is loaded; pass any other on."""
    try:
        import mujoco
    except ImportError:
        yield
        return
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if any(known in message for known in KNOWN_MUJOCO_WARNINGS):
            return
        if previous is not None:
            previous(message)
        else:
            sys.stderr.write(f"WARNING: {message}\n")

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    source_dir: Path | None = None,
) -> Any:
    with _quiet_known_mujoco_warnings():
        return _make_env(env_id, env_kwargs, max_episode_steps, render_mode, source_dir)


def _make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    max_episode_steps: int | None,
    render_mode: str | None,
    source_dir: Path | None,
) -> Any:
    import gymnasium as gym

    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if _is_class_ref(env_id):
        cls = resolve_ref(env_id, source_dir)
        env = cls(**kwargs)
        env = gym.wrappers.TimeLimit(env, max_episode_steps or 1000)
        return gym.wrappers.OrderEnforcing(env)
    return gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)


# --------------------------------------------------------------------------- references


def _import_module(module: str, base_dir: Path | None) -> Any:
    if base_dir is not None:
        path = Path(base_dir) / (module.replace(".", "/") + ".py")
        if path.is_file():
            name = f"eureka_lab_task_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}_{module}"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec and spec.loader
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        where = f" beside the task file ({base_dir})" if base_dir else ""
        nearby = [p.stem for p in Path(base_dir).glob("*.py")] if base_dir else []
        raise TaskError(
            f"Cannot import {module!r} ({e})."
            + did_you_mean(module, nearby)
            + f" Put {module}.py{where} or install the module."
        ) from None


def _split_ref(ref: str) -> tuple[str, str]:
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise TaskError(f"Bad reference {ref!r}: write it as 'module:function'.")
    return module.removesuffix(".py"), attr


def resolve_ref(ref: str, base_dir: Path | None) -> Any:
    """Import ``module:attr`` (module beside the task file first) and return the attribute."""
    module, attr = _split_ref(ref)
    mod = _import_module(module, base_dir)
    try:
        return getattr(mod, attr)
    except AttributeError:
        names = [n for n in vars(mod) if not n.startswith("_")]
        raise TaskError(
            f"{module!r} has no attribute {attr!r}." + did_you_mean(attr, names)
        ) from None


def reward_source(ref: str, base_dir: Path | None) -> str:
    """Source of a contract reward as a standalone program defining ``compute_reward``.

    The referenced function is renamed ``compute_reward``; the module-level functions,
    constants and imports it uses (transitively) come along, nothing else.
    """
    fn = resolve_ref(ref, base_dir)
    path = Path(fn.__code__.co_filename)
    tree = ast.parse(path.read_text())
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    defs = {
        k: v
        for k, v in ast_tools.module_defs(tree).items()
        if isinstance(v, ast.FunctionDef | ast.Assign | ast.AnnAssign)
    }
    name = fn.__name__
    if name not in defs:
        raise TaskError(f"Cannot find the source of {ref!r} in {path}.")
    needed_nodes = [defs[name], *ast_tools.closure(defs, [defs[name]])]
    used = {n.id for d in needed_nodes for n in ast.walk(d) if isinstance(n, ast.Name)}
    body: list[ast.stmt] = [
        imp
        for imp in imports
        if any((a.asname or a.name).split(".")[0] in used for a in imp.names)  # type: ignore[attr-defined]
    ]
    seen: set[int] = set()
    for node in tree.body:
        if id(node) in seen:
            continue
        if any(d is node for d in needed_nodes):
            seen.add(id(node))
            if isinstance(node, ast.FunctionDef) and node.name == name:
                node = ast.FunctionDef(**{**node.__dict__, "name": "compute_reward"})
            body.append(node)
    module = ast.Module(body=body, type_ignores=[])
    ast.fix_missing_locations(module)
    return ast.unparse(module) + "\n"


# --------------------------------------------------------------------------- loading


def builtin_task_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(data_dir("envs").glob("*.yaml"))}


def load_task_file(path: str | Path) -> Task:
    path = Path(path).expanduser().resolve()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TaskError(f"Task file {path} does not exist.") from None
    except yaml.YAMLError as e:
        raise TaskError(f"Task file {path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"Task file {path} must hold a mapping of fields (name, env_id, ...).")
    raw.setdefault("source_dir", str(path.parent))
    return task_from_dict(raw, origin=str(path))


def task_from_dict(raw: dict[str, Any], origin: str = "task") -> Task:
    try:
        task = Task.model_validate(raw)
    except ValidationError as e:
        raise TaskError(_explain(e, origin)) from None
    check_env_id(task.env_id, task.source_dir)
    check_refs(task, origin)
    return task


def check_refs(task: Task, origin: str = "task") -> None:
    """Raise TaskError, naming the field, unless every code reference of ``task`` resolves
    to a function (caught at load time, not in a training child after paying for samples)."""
    fields = [(f, getattr(task, f)) for f in ("fitness", "human_reward", "sparse_reward")]
    fields += [(f"seed_rewards[{i}]", r) for i, r in enumerate(task.seed_rewards)]
    for name, ref in fields:
        if ref == ENV_REWARD or (name == "fitness" and ref == NO_FITNESS):
            continue
        try:
            obj = resolve_ref(ref, task.source_dir)
        except TaskError as e:
            raise TaskError(f"{origin}: field {name!r}: {e}") from None
        if not callable(obj):
            raise TaskError(f"{origin}: field {name!r}: {ref!r} is not a function.")


def _explain(e: ValidationError, origin: str) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(err["loc"][-1]), Task.model_fields) or " Remove it."
            lines.append(f"unknown key {loc!r}.{hint}")
        elif err["type"] == "missing":
            desc = Task.model_fields.get(loc)
            why = f" ({desc.description})" if desc and desc.description else ""
            lines.append(f"missing field {loc!r}{why}: add it.")
        elif err["type"] == "value_error":
            lines.append(f"field {loc!r}: {err['ctx']['error']}")
        else:
            lines.append(f"field {loc!r}: {err['msg']} (got {err.get('input')!r}).")
    return f"{origin}: " + "; ".join(lines)


def load_task(ref: str, **overrides: Any) -> Task:
    """Load a task by built-in name, by path to a YAML file, or from a Gymnasium env id.

    With an env id, ``overrides`` must include ``description``; the fitness is then the env's
    own return unless ``fitness`` is given.
    """
    builtins = builtin_task_files()
    if ref in builtins:
        task = load_task_file(builtins[ref])
    elif ref.endswith((".yaml", ".yml")) or Path(ref).is_file():
        task = load_task_file(ref)
    else:
        import gymnasium as gym

        is_env = ref in gym.registry or (":" in ref)
        if not is_env:
            raise TaskError(
                f"{ref!r} is neither a built-in task, a task file, nor a Gymnasium env id."
                + did_you_mean(ref, list(builtins) + list(gym.registry.keys()))
                + " See `eureka-lab tasks`."
            )
        if not overrides.get("description"):
            raise TaskError(
                f'{ref!r} is an env id, not a task: add --description "what to achieve".'
            )
        raw = {"name": ref.replace(":", "_").replace("/", "_"), "env_id": ref, "timesteps": 50_000}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if raw.get("fitness") and ":" in raw["fitness"]:
            raw.setdefault("source_dir", str(Path.cwd()))
        return task_from_dict(raw, origin=ref)
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        task = task_from_dict({**task.model_dump(), **changes}, origin=ref)
    return task
