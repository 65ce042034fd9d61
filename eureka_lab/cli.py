"""The ``eureka-lab`` command. The library raises; only this module formats errors."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from eureka_lab.backends import BackendSettings, default_backend_name, make_backend
from eureka_lab.errors import ConfigError, EurekaError
from eureka_lab.loop import Loop, LoopConfig
from eureka_lab.report import make_reporter, show_run
from eureka_lab.store import CONFIG, RunStore
from eureka_lab.task import Task, builtin_task_files, load_task, load_task_file

CONFIG_FILE = "eureka-lab.toml"
_LLM_KEYS = {f.name for f in fields(BackendSettings)} - {
    "api_key",
    "seeds",
    "run_dir",
    "spent_usd",
    "interactive",
    "seed",
}


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eureka-lab",
        description="Language models write reward functions; PPO scores them; the loop "
        "evolves better ones.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("tasks", help="list the built-in tasks", parents=[common])

    run = sub.add_parser("run", help="run the reward-synthesis loop on a task", parents=[common])
    run.add_argument("task", help="built-in task name, task YAML file, or Gymnasium env id")
    run.add_argument("--description", help="the task in words (when TASK is an env id)")
    run.add_argument("--fitness", help="module:function scoring an episode (with an env id)")
    g = run.add_argument_group("model")
    g.add_argument(
        "--llm",
        help="backend: openai, offline, manual, replay:RUN_DIR (default: "
        "openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else offline)",
    )
    g.add_argument("--model", help="model name at the endpoint")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--temperature", type=float)
    g.add_argument("--max-tokens", type=_positive(int))
    g.add_argument("--timeout", type=_positive(float), help="request timeout in seconds")
    g.add_argument("--concurrency", type=_positive(int), help="parallel requests at most")
    g.add_argument("--max-cost", type=_positive(float), help="stop before spending more USD")
    g.add_argument("--config", type=Path, help=f"settings file (default: ./{CONFIG_FILE})")
    g = run.add_argument_group("loop")
    g.add_argument("--iterations", type=_positive(int), default=3)
    g.add_argument("--samples", type=_positive(int), default=4, help="candidates per iteration")
    g.add_argument("--timesteps", type=_positive(int), help="PPO steps per candidate")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=_positive(int), default=os.cpu_count() or 1)
    g.add_argument("--repair-rounds", type=int, default=1)
    g.add_argument(
        "--final-seeds",
        type=_positive(int),
        default=1,
        help="seeds for the closing best/human/sparse comparison",
    )
    g.add_argument("--runs-dir", type=Path, default=Path("runs"))

    show = sub.add_parser("show", help="print a run's candidates and results", parents=[common])
    show.add_argument("run_dir", type=Path)

    resume = sub.add_parser("resume", help="continue a stopped run", parents=[common])
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--workers", type=_positive(int))
    resume.add_argument(
        "--max-cost", type=_positive(float), help="a new budget in USD (the run's total)"
    )
    return p


def cmd_tasks(console: Console) -> int:
    table = Table(title="built-in tasks", title_justify="left")
    for col in ("name", "env", "description", "timesteps"):
        table.add_column(col, overflow="fold")
    for name, path in builtin_task_files().items():
        t = load_task_file(path)
        table.add_row(name, t.env_id, " ".join(t.description.split())[:90], f"{t.timesteps:,}")
    console.print(table)
    return 0


def _file_settings(path: Path | None) -> dict[str, Any]:
    path = path or (Path(CONFIG_FILE) if Path(CONFIG_FILE).is_file() else None)
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"Cannot read settings file {path}: {e}") from None
    llm = data.get("llm", {})
    unknown = set(llm) - _LLM_KEYS - {"backend"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)} in [llm]; known: {sorted(_LLM_KEYS)}"
        )
    if "prices" in llm:
        llm["prices"] = {k: tuple(v) for k, v in llm["prices"].items()}
    return llm


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    task = load_task(args.task, description=args.description, fitness=args.fitness)
    loop_config = LoopConfig(
        iterations=args.iterations,
        samples=args.samples,
        timesteps=args.timesteps,
        seed=args.seed,
        workers=args.workers,
        repair_rounds=args.repair_rounds,
        final_seeds=args.final_seeds,
    )
    file_llm = _file_settings(args.config)
    llm = args.llm or file_llm.pop("backend", None) or default_backend_name()
    file_llm.pop("backend", None)
    cli_llm = {
        k: getattr(args, k)
        for k in (
            "model",
            "base_url",
            "temperature",
            "max_tokens",
            "timeout",
            "concurrency",
            "max_cost",
        )
        if getattr(args, k) is not None
    }
    llm_settings = {**file_llm, **cli_llm}
    why = (
        ""
        if args.llm
        else (
            " (chosen because OPENAI_API_KEY or OPENAI_BASE_URL is set)"
            if llm == "openai"
            else " (no OPENAI_API_KEY or OPENAI_BASE_URL set; --llm openai to use a model)"
        )
    )
    console.print(f"model backend: {llm}{why}", markup=False, highlight=False)
    if llm == "offline" and not task.seed_rewards:
        raise ConfigError(
            f"The offline backend searches over a task's seed rewards, and {task.name!r} has "
            "none. Add seed_rewards to a task file (see README, 'Your own environment and "
            "task'), or use a model: --llm openai --model NAME [--base-url URL]."
        )
    config = {
        "task": task.model_dump(mode="json"),
        "loop": asdict(loop_config),
        "llm": llm,
        "llm_settings": llm_settings,
    }
    store = RunStore.create(args.runs_dir, task.name, config)
    return _run(store, console)


def _run(
    store: RunStore, console: Console, workers: int | None = None, max_cost: float | None = None
) -> int:
    config = store.config
    if max_cost is not None:
        config["llm_settings"] = {**config.get("llm_settings", {}), "max_cost": max_cost}
        store.write(CONFIG, config)
    task = Task.model_validate(config["task"])
    loop_config = LoopConfig(**{**config["loop"], **({"workers": workers} if workers else {})})
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
        interactive=sys.stdin.isatty(),
    )
    backend = make_backend(config["llm"], settings)
    loop = Loop(store, task, loop_config, backend, reporter=make_reporter(console))
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = round(time.time(), 3)
    try:
        loop.run()
    except KeyboardInterrupt:
        console.print(f"\nstopped; continue with: eureka-lab resume {store.root}", markup=False)
        return 130
    except EurekaError as e:
        note = f"(the run so far is in {store.root})"
        if any(ev["event"] == "budget_reached" for ev in store.events() if ev["time"] >= started):
            note = (
                "(the search stopped at --max-cost; to go on, raise it: eureka-lab resume "
                f"{store.root} --max-cost USD)"
            )
        raise type(e)(f"{e}\n{note}") from e
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    show_run(store, console)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    """First Ctrl-C (or SIGTERM): stop gracefully (children killed, state is already on
    disk). A second one: stop at once."""
    sys.stderr.write("\nstopping (press Ctrl-C again to stop at once)\n")
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    try:
        if args.command == "tasks":
            return cmd_tasks(console)
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "show":
            show_run(RunStore.open(args.run_dir), console)
            return 0
        if args.command == "resume":
            return _run(
                RunStore.open(args.run_dir), console, workers=args.workers, max_cost=args.max_cost
            )
    except EurekaError as e:
        if args.debug:
            raise
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"error: {e}", markup=False)
        return 2
    except OSError as e:
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        fix = {
            errno.ENOSPC: "free some disk space, then continue with `eureka-lab resume RUN_DIR`",
            errno.EACCES: "check the folder's permissions or choose another with --runs-dir",
            errno.EROFS: "choose a writable folder with --runs-dir",
        }.get(e.errno or 0, "run again with --debug for the traceback")
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"error: {e.strerror or e}{where}: {fix}", markup=False
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
