"""The reward contract, public because users write seed rewards in it::

    def compute_reward(obs, action, next_obs, info) -> tuple[np.ndarray, dict[str, np.ndarray]]

Everything is batched over the parallel environments (first axis = env): ``obs`` and
``next_obs`` have shape (n_envs, *obs_shape), ``action`` (n_envs, *action_shape), ``info``
is a dict of arrays of shape (n_envs, ...). The function returns the total reward, shape
(n_envs,), and a dict of named components of the same shape that sum to the total. Helper
functions may be defined beside it; only ``numpy`` and ``math`` may be imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from eureka_lab.core.bounds import MAX_COMPONENTS, MAX_NAME
from eureka_lab.core.errors import ContractError
from eureka_lab.core.text import safe_name

FUNCTION_NAME = "compute_reward"
ARGUMENTS = ("obs", "action", "next_obs", "info")
ALLOWED_IMPORTS = ("numpy", "math")

RewardFn = Callable[..., tuple[np.ndarray, dict[str, np.ndarray]]]


# Info keys that carry the env's reward terms (or SB3 book-keeping) never reach the model.
_HIDDEN_INFO = re.compile(
    r"(?i)(reward|rew_|_rew|cost|penalt|bonus|^episode$|^terminal_|^TimeLimit)"
)


def visible_info_key(key: str) -> bool:
    """Whether an ``info`` key may be shown to the model and passed to reward code."""
    return not _HIDDEN_INFO.search(key)


def stack_infos(
    infos: Sequence[dict[str, Any]], visible_only: bool = False
) -> dict[str, np.ndarray]:
    """Stack the numeric info keys present in every dict into arrays (len(infos), ...)."""
    if not infos:
        return {}
    keys = set(infos[0]).intersection(*infos[1:])
    out: dict[str, np.ndarray] = {}
    for k in sorted(keys):
        if visible_only and not visible_info_key(k):
            continue
        try:
            out[k] = np.asarray([i[k] for i in infos], dtype=np.float64)
        except (TypeError, ValueError):
            continue
    return out


def batch_info(infos: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The ``info`` argument of reward code: visible numeric keys, batched over envs."""
    return stack_infos(infos, visible_only=True)


def check_reward_output(
    result: Any, n_envs: int, tolerance: float = 1e-4
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Validate what a reward function returned; raise ContractError naming the problem."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError(
            f"compute_reward must return (total, components), got {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, tuple) else "")
        )
    total, components = result
    total = _as_batch(total, n_envs, "total reward")
    check_components(components)
    comps = {name: _as_batch(v, n_envs, f"component {name!r}") for name, v in components.items()}
    summed = np.sum(list(comps.values()), axis=0)
    gap = float(np.max(np.abs(summed - total)))
    scale = 1.0 + float(np.max(np.abs(total)))
    if gap > tolerance * scale:
        raise ContractError(
            f"the components do not sum to the total (largest gap {gap:.3g}); return the sum "
            "of the components as the total"
        )
    return total, comps


def check_components(components: Any) -> None:
    """The components' container, count and names (their values are the caller's to check)."""
    if not isinstance(components, dict) or not components:
        raise ContractError("the second return value must be a non-empty dict of named components")
    if len(components) > MAX_COMPONENTS:
        raise ContractError(
            f"the reward returns {len(components)} components; at most {MAX_COMPONENTS} are "
            "allowed: merge related terms"
        )
    for name in components:
        if not isinstance(name, str):
            raise ContractError(f"component names must be strings, got a {type(name).__name__}")
        if len(name) > MAX_NAME or not name.isprintable():
            raise ContractError(
                f"component name {safe_name(name, 40)!r} is not a short printable name "
                f"(at most {MAX_NAME} characters): name each component after what it rewards"
            )


def _as_batch(value: Any, n_envs: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ContractError(f"{what} is not numeric: {e}") from None
    if arr.ndim == 0:
        raise ContractError(
            f"{what} is a scalar; it must have shape ({n_envs},), one value per env"
        )
    if arr.shape != (n_envs,):
        raise ContractError(f"{what} has shape {arr.shape}; it must have shape ({n_envs},)")
    if not np.all(np.isfinite(arr)):
        raise ContractError(f"{what} has non-finite values (NaN or inf)")
    return arr
