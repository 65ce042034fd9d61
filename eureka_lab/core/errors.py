"""Errors a user can cause, each with a message that names the problem and the fix.

The library raises these; only the CLI formats them (one line, exit code 2, no traceback
unless ``--debug``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EurekaError(Exception):
    """Base class of every error eureka-lab raises on purpose."""


class TaskError(EurekaError):
    """A task file or task reference is wrong (unknown key, missing field, unknown env)."""


class ConfigError(EurekaError):
    """A setting (CLI flag, config file, environment variable) has an impossible value."""


class BackendError(EurekaError):
    """The model backend cannot be used as configured (bad key, unknown model, bad URL)."""


class BudgetExceeded(EurekaError):
    """A request would take the run past ``--max-cost``."""


class RunError(EurekaError):
    """A run directory cannot be read, written or resumed."""


class RunFolderWarning(UserWarning):
    """A file of a run folder was skipped by a reader (``show``, ``report``, ``load_run``): a
    link, not a regular file, too large, or not what the run store writes there."""


class SandboxError(EurekaError):
    """The OS cannot isolate candidate code as required on this machine."""


class ContractError(EurekaError):
    """Reward code breaks the reward contract (signature, shapes, values)."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' Did you mean X, Y?' for near matches of ``name``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + ", ".join(repr(c) for c in close) + "?"
