"""The ``eureka-lab`` command. The library raises; only this module formats errors."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eureka_lab import api
from eureka_lab.backends import default_backend_name
from eureka_lab.cli.arguments import CONFIG_FILE, LLM_KEYS, SELECTION_SPELLINGS, build_parser
from eureka_lab.core.errors import ConfigError, EurekaError, RunError, RunFolderWarning
from eureka_lab.core.plugins import SELECTORS
from eureka_lab.core.text import safe_text
from eureka_lab.report.show import show_run, show_runs
from eureka_lab.report.terminal import make_reporter
from eureka_lab.runs.store import RunStore
from eureka_lab.task.load import builtin_task_files, load_task_file


def cmd_tasks(console: Console) -> int:
    """The built-in tasks: name, env and budget on the left, the whole description on the
    right, wrapped at word boundaries to the terminal's width."""
    table = Table(title="built-in tasks", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("task", no_wrap=True)
    table.add_column("what the policy must do", ratio=1)
    for name, path in builtin_task_files().items():
        t = load_task_file(path)
        task = Text.assemble((name, "bold"), f"\n{t.env_id}\n", (f"{t.timesteps:,} steps", "dim"))
        table.add_row(task, Text(" ".join(t.description.split())), end_section=True)
    console.print(table)
    console.print("run one: eureka-lab run NAME (its YAML: envs/NAME.yaml)", markup=False)
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
    unknown = set(llm) - LLM_KEYS - {"backend"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)} in [llm]; known: {sorted(LLM_KEYS)}"
        )
    if "prices" in llm:
        llm["prices"] = {k: tuple(v) for k, v in llm["prices"].items()}
    return llm


def _trainer(args: argparse.Namespace) -> str | dict[str, Any] | None:
    """``--trainer`` with ``--trainer-option``s, as :func:`eureka_lab.api.run` takes it."""
    if args.trainer_option:
        return {**({"name": args.trainer} if args.trainer else {}), **dict(args.trainer_option)}
    return args.trainer


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    file_llm = _file_settings(args.config)
    llm = args.llm or file_llm.pop("backend", None) or default_backend_name()
    file_llm.pop("backend", None)
    cli_llm = {k: getattr(args, k) for k in LLM_KEYS if getattr(args, k, None) is not None}
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
    if args.feedback in SELECTION_SPELLINGS:
        args.selection, args.feedback = args.feedback, None
    loop = {k: getattr(args, k) for k in api.LOOP_SETTINGS if getattr(args, k, None) is not None}
    named = {
        "noise": args.oracle_noise,
        "mistakes": args.oracle_mistakes,
        "host": args.host,
        "port": args.port,
    }
    options = {k: v for k, v in named.items() if v is not None}
    loop["selection_options"] = {**options, **dict(args.selection_option)}
    address = {"address": args.ray_address} if args.ray_address else {}
    loop["executor_options"] = {**address, **dict(args.executor_option)}
    return _guarded(
        console,
        lambda reporter: api.run(
            args.task,
            llm=llm,
            runs_dir=args.runs_dir,
            reporter=reporter,
            description=args.description,
            fitness=args.fitness,
            trainer=_trainer(args),
            **loop,
            **{**file_llm, **cli_llm},
        ),
    )


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    path = RunStore.open(args.run_dir).root
    return _guarded(
        console,
        lambda reporter: api.resume(
            path,
            workers=args.workers,
            max_cost=args.max_cost,
            allow_weak_sandbox=args.allow_weak_sandbox,
            reporter=reporter,
        ),
    )


def cmd_show(path: Path, console: Console) -> int:
    """One run in full; a folder of runs (``runs/``) as a list of them."""
    if path.is_dir() and not (path / "config.json").exists():
        runs = sorted(p for p in path.iterdir() if (p / "config.json").is_file())
        if runs:
            show_runs(runs, console)
            return 0
    show_run(RunStore.open(path, lenient=True), console)
    return 0


def cmd_rank(args: argparse.Namespace, console: Console) -> int:
    """Serve the ranking page (or the terminal question) of a run waiting for a person,
    and go on; one line, and no work, where the run waits for none."""
    store = RunStore.open(args.run_dir)
    root = store.root
    selection = str(store.config.get("loop", {}).get("selection", "fitness"))
    if selection not in SELECTORS.names() or not SELECTORS.get(selection).records_itself:
        raise ConfigError(
            f"{root} is ranked by --selection {selection}, not by a person: there is "
            f"nothing to rank (eureka-lab resume {root} continues it)."
        )
    if store.summary() is not None:
        console.print(
            f"nothing to rank: {root} has finished ({len(store.rankings())} rankings "
            f"recorded; eureka-lab show {root})",
            markup=False,
        )
        return 0
    if not waits_for_a_ranking(store):
        console.print(
            f"nothing to rank now: {root} stopped before a ranking was due; eureka-lab "
            f"resume {root} continues it and asks for one when it is",
            markup=False,
        )
        return 0
    args.workers = args.max_cost = args.allow_weak_sandbox = None
    return cmd_resume(args, console)


def waits_for_a_ranking(store: RunStore) -> bool:
    """Whether the run stopped while it waited for a person's ranking: it asked for one
    (event ``ranking_waiting``) after the last ranking it recorded."""
    asked = [e["time"] for e in store.events() if e.get("event") == "ranking_waiting"]
    answered = [r.time for r in store.rankings()]
    return bool(asked) and (not answered or max(asked) > max(answered))


def _guarded(console: Console, go: Any) -> int:
    """Run ``go(reporter)`` with graceful Ctrl-C, then show the run."""
    reporter = _RunReporter(make_reporter(console), console)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = round(time.time(), 3)
    try:
        run = go(reporter)
    except KeyboardInterrupt:
        where = reporter.root or "RUN_DIR"
        console.print(f"\nstopped; continue with: eureka-lab resume {where}", markup=False)
        return 130
    except OSError as e:
        if reporter.root is None or e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = e.filename or reporter.root
        raise RunError(
            f"The disk is full at {where} ({e.strerror}). Free some space on it, then "
            f"continue with: eureka-lab resume {reporter.root}"
        ) from e
    except EurekaError as e:
        if reporter.root is None:
            raise
        note = f"(the run so far is in {reporter.root})"
        store = RunStore(Path(reporter.root))
        if any(ev["event"] == "budget_reached" for ev in store.events() if ev["time"] >= started):
            note = (
                "(the search stopped at --max-cost; to go on, raise it: eureka-lab resume "
                f"{reporter.root} --max-cost USD)"
            )
        raise type(e)(f"{e}\n{note}") from e
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    show_run(run.store, console)
    return 0


class _RunReporter:
    """Passes events on, remembering which run they belong to; says which trainer a task
    that names none got, as the model backend is said."""

    def __init__(self, inner: Any, console: Console) -> None:
        self.inner = inner
        self.console = console
        self.root: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "run_started":
            self.root = event["run"]
        if event.get("event") == "trainer_chosen":
            self.console.print(event["line"], markup=False, highlight=False)
        self.inner(event)


def _flags(message: str) -> str:
    """A library message with parameter names written as the CLI's flags."""
    for name in (*api.LOOP_SETTINGS, *api.LLM_SETTINGS):
        flag = "--" + name.replace("_", "-")
        message = message.replace(f"{name} must", f"{flag} must").replace(
            f"Unknown setting {name!r}", f"Unknown option {flag}"
        )
    return message


def _interrupt(signum: int, frame: object) -> None:
    """First Ctrl-C (or SIGTERM): stop gracefully (children killed, state is already on
    disk). A second one: stop at once."""
    sys.stderr.write("\nstopping (press Ctrl-C again to stop at once)\n")
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    raise KeyboardInterrupt


def _one_line(show: Any) -> Any:
    """Python's ``showwarning``, but a file of a run folder that a reader skipped is one line
    on stderr (the file and the problem), not a source location."""

    def shown(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RunFolderWarning):
            Console(stderr=True, highlight=False, soft_wrap=True).print(
                f"warning: {safe_text(message)}", markup=False
            )
        else:
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, before MuJoCo loads
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line(warnings.showwarning)
        return _dispatch(args, console)


def _dispatch(args: argparse.Namespace, console: Console) -> int:
    try:
        if args.command == "tasks":
            return cmd_tasks(console)
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "show":
            return cmd_show(args.run_dir, console)
        if args.command == "rank":
            return cmd_rank(args, console)
        if args.command == "resume":
            return cmd_resume(args, console)
        if args.command == "report":
            from eureka_lab.report.html import write_report

            where = write_report(args.run_dir, args.output, embed_videos=args.videos == "embed")
            console.print(f"report written to {where}", markup=False)
            return 0
    except EurekaError as e:
        if args.debug:
            raise
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"error: {_flags(str(e))}", markup=False
        )
        return 2
    except OSError as e:
        if args.debug:
            raise
        path = f" ({e.filename})" if e.filename else ""
        fix = {
            errno.ENOSPC: "free some disk space, then run the command again",
            errno.EACCES: "check the folder's permissions or choose another with --runs-dir",
            errno.EROFS: "choose a writable folder with --runs-dir",
        }.get(e.errno or 0, "run again with --debug for the traceback")
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"error: {e.strerror or e}{path}: {fix}", markup=False
        )
        return 2
    return 0
