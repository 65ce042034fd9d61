"""The task model: what to achieve, how success is measured, and the training budget.

A task is a YAML file under ``envs/`` (or anywhere; :mod:`.load` reads it), optionally with a
Python module beside it holding the fitness function and hand-written rewards. References
to code are ``module:function`` strings, resolved lazily (:mod:`.refs`).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from eureka_lab.core.errors import EurekaError, did_you_mean
from eureka_lab.core.files import data_dir
from eureka_lab.core.plugins import TRAINERS
from eureka_lab.task.envs import is_class_ref, make_env
from eureka_lab.task.refs import resolve_ref, reward_source, split_ref

ENV_REWARD = "env"
NO_FITNESS = "none"
"""Fitness reference of a task judged only by a person (--feedback human or text)."""
"""Reward reference meaning "the environment's own reward"."""


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
    trainer: TrainerChoice | None = Field(
        None,
        description="The trainer and its settings. None: the machine's default, chosen "
        "when a run starts and recorded with it (eureka_lab.trainers.default): warp where "
        "torch sees a CUDA device and the env has a batched form, ppo for every other "
        "batched env, sb3 for the rest.",
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
    batched: str | None = Field(
        None,
        description="'module:Class': a batched definition of the task's own MuJoCo env "
        "(a subclass of eureka_lab.batched.definition.Definition), beside the task file "
        "like the other references; the env then steps in C (trainer ppo, the evaluator) "
        "and on MuJoCo Warp (trainer warp). Jobs may read its module. Gymnasium's eleven "
        "MuJoCo v5 envs need none.",
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
        "task) and its batched definition's module are readable without being listed.",
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
        """What a job that runs reward code may read of the task's folder: the modules of
        the custom env and of its batched definition beside the task, and ``job_files``."""
        if self.source_dir is None:
            return []
        folder = Path(self.source_dir)
        paths = [folder / f for f in self.job_files]
        refs = [self.env_id] if is_class_ref(self.env_id) else []
        refs += [self.batched] if self.batched else []
        for ref in refs:
            module = folder / (split_ref(ref)[0].replace(".", "/") + ".py")
            if module.is_file() and module not in paths:
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
