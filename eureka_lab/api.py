"""The library API: start, resume and read runs from scripts and notebooks, with the CLI's
behaviour (the CLI is a thin shell over these)::

    import eureka_lab as el

    run = el.run("mountain_car", iterations=2, samples=4)        # offline search, no key
    run = el.run("half_cheetah", llm="openai", model="gpt-4o-mini", max_cost=2.0)
    run = el.resume("runs/20261122-013731-mountain_car", workers=4)
    run = el.load_run("runs/20261122-013731-mountain_car")       # read only
    run.best.code, run.best.fitness, run.summary

Settings are the fields of :class:`~eureka_lab.runs.config.LoopConfig` (loop) and of
:class:`~eureka_lab.backends.BackendSettings` that a user sets (model endpoint); an
unknown name is an error naming the parameter.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from eureka_lab.backends import BackendSettings, default_backend_name, make_backend
from eureka_lab.core.errors import ConfigError, did_you_mean
from eureka_lab.loop.journal import Journal, Reporter
from eureka_lab.loop.loop import Loop
from eureka_lab.report.results import Run, load_run
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import load_task
from eureka_lab.task.model import Task
from eureka_lab.trainers.default import with_trainer

__all__ = ["LLM_SETTINGS", "LOOP_SETTINGS", "Run", "load_run", "resume", "run"]

LOOP_SETTINGS = tuple(f.name for f in fields(LoopConfig))
LLM_SETTINGS = tuple(
    f.name
    for f in fields(BackendSettings)
    if f.name not in {"api_key", "seeds", "run_dir", "spent_usd", "interactive", "seed"}
)


def _split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    loop = {k: v for k, v in settings.items() if k in LOOP_SETTINGS}
    llm = {k: v for k, v in settings.items() if k in LLM_SETTINGS}
    unknown = set(settings) - set(loop) - set(llm)
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"Unknown setting {name!r}."
            + did_you_mean(name, LOOP_SETTINGS + LLM_SETTINGS)
            + f" Loop settings: {', '.join(LOOP_SETTINGS)}; model settings: "
            f"{', '.join(LLM_SETTINGS)}."
        )
    return loop, llm


def run(
    task: str | Task,
    *,
    llm: str | None = None,
    runs_dir: str | Path = "runs",
    reporter: Reporter | None = None,
    description: str | None = None,
    fitness: str | None = None,
    trainer: str | dict[str, Any] | None = None,
    **settings: Any,
) -> Run:
    """Run the loop on ``task`` (a built-in name, a task file, an env id with
    ``description``, or a :class:`Task`) and return the finished run.

    ``llm``: the model backend (``openai``, ``offline``, ``manual``, ``replay:RUN_DIR``);
    default ``openai`` when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, else
    ``offline``. ``trainer``: a trainer's name (``sb3``, ``ppo``, ``warp``, or a plugin's),
    or a block with its settings (``{"name": "ppo", "n_envs": 32}``), replacing the task's;
    where neither names one, the machine's default (:mod:`eureka_lab.trainers.default`),
    which the run records and says (event ``trainer_chosen``).
    Other keyword arguments are loop settings (``iterations``, ``samples``,
    ``timesteps``, ``workers``, ``executor``, ``selection``, ...) and model settings
    (``model``, ``base_url``, ``temperature``, ``max_cost``, ...).
    """
    if not isinstance(task, Task):
        task = load_task(task, description=description, fitness=fitness)
    task, chosen = with_trainer(task, trainer)
    loop_settings, llm_settings = _split(settings)
    config = LoopConfig(**loop_settings)
    llm = llm or default_backend_name()
    if llm == "offline" and not task.seed_rewards:
        raise ConfigError(
            f"The offline backend searches over a task's seed rewards, and {task.name!r} has "
            "none. Add seed_rewards to a task file (see README, 'Your own environment and "
            "task'), or use a model: llm='openai', model=NAME."
        )
    store = RunStore.create(
        runs_dir,
        task.name,
        {
            "task": task.model_dump(mode="json"),
            "loop": asdict(config),
            "llm": llm,
            "llm_settings": llm_settings,
        },
    )
    if chosen is not None:
        Journal(store, reporter).emit(
            "trainer_chosen", trainer=chosen.choice.name, reason=chosen.reason, line=chosen.line
        )
    return _go(store, reporter)


def resume(
    path: str | Path,
    *,
    workers: int | None = None,
    max_cost: float | None = None,
    allow_weak_sandbox: bool | None = None,
    reporter: Reporter | None = None,
) -> Run:
    """Continue a stopped run where it stopped; ``max_cost`` sets a new budget in USD for the
    run's total. Finished steps are not done again."""
    store = RunStore.open(path)
    config = store.config
    if max_cost is not None:
        config["llm_settings"] = {**config.get("llm_settings", {}), "max_cost": max_cost}
        store.save_config(config)
    overrides = {"workers": workers, "allow_weak_sandbox": allow_weak_sandbox}
    return _go(store, reporter, {k: v for k, v in overrides.items() if v is not None})


def _go(store: RunStore, reporter: Reporter | None, overrides: dict[str, Any] | None = None) -> Run:
    """Build the loop from what the run store recorded and run it."""
    config = store.config
    task = Task.model_validate(config["task"])
    loop_config = LoopConfig.from_record(config["loop"], **(overrides or {}))
    llm_settings = dict(config.get("llm_settings", {}))
    if "prices" in llm_settings:
        llm_settings["prices"] = {k: tuple(v) for k, v in llm_settings["prices"].items()}
    settings = BackendSettings(
        **llm_settings,
        api_key=os.environ.get("OPENAI_API_KEY"),
        seed=loop_config.seed,
        seeds=tuple(task.reward_source(r) or "" for r in task.seed_rewards),
        run_dir=store.root,
        spent_usd=store.usage().cost_usd,
        interactive=sys.stdin is not None and sys.stdin.isatty(),
    )
    backend = make_backend(config["llm"], settings)
    Loop(store, task, loop_config, backend, reporter=reporter).run()
    return load_run(store.root)
