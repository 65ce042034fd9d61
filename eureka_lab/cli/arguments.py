"""The command line's arguments: every subcommand and option, with its help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from eureka_lab import api
from eureka_lab.executors.base import EXECUTORS
from eureka_lab.feedback.base import FEEDBACK
from eureka_lab.runs.config import SCHEDULES, LoopConfig
from eureka_lab.selectors.base import SELECTORS

CONFIG_FILE = "eureka-lab.toml"
LLM_KEYS = set(api.LLM_SETTINGS)
DEFAULTS = LoopConfig()


SELECTION_SPELLINGS = ("human", "text", "oracle")
"""``--feedback NAME`` of earlier versions, meaning ``--selection NAME`` (the feedback then
follows from the selection mode)."""


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``, the value read as YAML (numbers, booleans, strings)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed if isinstance(parsed, int | float | bool | str) else value


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
    run.add_argument(
        "--trainer",
        help="the trainer, replacing the task's: sb3, ppo, warp, or a plugin's (the task's "
        "settings stay where it names the same trainer)",
    )
    run.add_argument(
        "--trainer-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the trainer (repeat for more), e.g. n_envs=32",
    )
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
    g.add_argument("--iterations", type=_positive(int), default=DEFAULTS.iterations)
    g.add_argument(
        "--samples", type=_positive(int), default=DEFAULTS.samples, help="candidates per iteration"
    )
    g.add_argument("--timesteps", type=_positive(int), help="training steps per candidate")
    g.add_argument("--seed", type=int, default=DEFAULTS.seed)
    g.add_argument(
        "--workers",
        type=_positive(int),
        default=DEFAULTS.workers,
        help="candidates trained side by side, each pinned to its own cores "
        "(default: this machine's cores)",
    )
    g.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=DEFAULTS.schedule,
        help="full: every candidate gets the whole budget; halving: all train for a fraction "
        "of it, the better half by fitness goes on, until one has the whole budget",
    )
    g.add_argument("--repair-rounds", type=int, default=DEFAULTS.repair_rounds)
    g.add_argument(
        "--race-seeds",
        type=_positive(int),
        default=DEFAULTS.race_seeds,
        help="most training seeds a contender gets when an iteration's best race the run's "
        "best on fresh seeds, until one is ahead beyond noise (1: no race)",
    )
    g.add_argument(
        "--race-size",
        type=_positive(int),
        default=DEFAULTS.race_size,
        help="an iteration's rewards (its best by their first seed) that race the run's best",
    )
    g.add_argument(
        "--final-seeds",
        type=_positive(int),
        default=DEFAULTS.final_seeds,
        help="seeds for the closing best/human/sparse comparison",
    )
    g.add_argument(
        "--executor",
        default=DEFAULTS.executor,
        help=f"where jobs run: {', '.join(EXECUTORS.names())}",
    )
    g.add_argument(
        "--executor-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the executor (repeat for more), e.g. address=HOST:PORT for ray",
    )
    g.add_argument(
        "--ray-address",
        help="the Ray cluster for --executor ray (default: Ray on this machine); the same as "
        "--executor-option address=ADDRESS",
    )
    g.add_argument(
        "--selection",
        default=DEFAULTS.selection,
        help=f"how candidates are ranked: {', '.join(SELECTORS.names())} (human: a person "
        "ranks rollout videos on a local page; text: at the terminal; oracle: a synthetic "
        "person ranking by the hidden score)",
    )
    g.add_argument(
        "--selection-option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the selection mode (repeat for more)",
    )
    g.add_argument(
        "--oracle-noise",
        type=float,
        help="--selection oracle: noise on the hidden score, as a share of its range",
    )
    g.add_argument(
        "--oracle-mistakes",
        type=float,
        help="--selection oracle: chance of swapping the most and least preferred",
    )
    g.add_argument(
        "--feedback",
        help=f"what the next prompt is built from: {', '.join(FEEDBACK.names())} (default: "
        "what the selection mode needs: reflection for fitness, preference for a person or "
        f"the oracle); {', '.join(SELECTION_SPELLINGS)} are older spellings of --selection",
    )
    g.add_argument("--host", help="--selection human: the page's address (default 127.0.0.1)")
    g.add_argument("--port", type=int, help="--selection human: the page's port")
    g.add_argument(
        "--allow-weak-sandbox",
        action="store_true",
        help="run candidate code even where an OS isolation layer is missing",
    )
    g.add_argument("--videos", action="store_true", help="render a rollout video of each candidate")
    g.add_argument("--video-steps", type=_positive(int), help="longest video in env steps")
    g.add_argument("--video-size", type=_size, help="video WIDTHxHEIGHT (default 320x240)")
    g.add_argument("--video-fps", type=_positive(int), help="video frame rate (default 30)")
    g.add_argument("--runs-dir", type=Path, default=Path("runs"))

    show = sub.add_parser("show", help="print a run's candidates and results", parents=[common])
    show.add_argument("run_dir", type=Path)

    report = sub.add_parser(
        "report", help="write a run's self-contained HTML report", parents=[common]
    )
    report.add_argument("run_dir", type=Path)
    report.add_argument(
        "-o", "--output", type=Path, help="the HTML file (default: RUN_DIR/report.html)"
    )
    report.add_argument(
        "--videos",
        choices=("link", "embed"),
        default="link",
        help="rollout videos, where the run has them: linked (default) or embedded",
    )

    rank = sub.add_parser(
        "rank",
        help="serve the ranking page of a run waiting for a person's ranking, and go on",
        parents=[common],
    )
    rank.add_argument("run_dir", type=Path)

    resume = sub.add_parser("resume", help="continue a stopped run", parents=[common])
    resume.add_argument("run_dir", type=Path)
    resume.add_argument("--workers", type=_positive(int))
    resume.add_argument(
        "--max-cost", type=_positive(float), help="a new budget in USD (the run's total)"
    )
    resume.add_argument(
        "--allow-weak-sandbox",
        action="store_true",
        default=None,
        help="run candidate code even where an OS isolation layer is missing",
    )
    return p


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"at least 16x16, got {text}")
    return width, height
