"""Reward code on torch tensors: the ``numpy`` it imports there, and the check of its output.

A trainer whose simulations live in torch (the GPU trainer) runs the candidate's one
``compute_reward(obs, action, next_obs, info)`` on tensors, eagerly: no compilation per
candidate. The code still says ``import numpy as np``; the sandbox then hands it
:func:`make_numpy`'s module: numpy's names over torch, built on ``array_api_compat.torch``
(the array API standard, with numpy's ``axis=`` keywords), plus the numpy spellings the
standard renames (``concatenate``, ``power``, ``arctan2``, ``amax``, ...). Every float type
is float32, the trainer's precision. Arrays the code creates land on the simulations'
device. Tensors gain the numpy array methods models use and torch lacks (``astype``,
``copy``): :func:`install_array_methods`, called only in the process that runs the reward.

Only names the policy allows (``NUMPY_ALLOWED``) are present; a missing one raises
``AttributeError`` naming it, which validation reports to the model with a repair prompt.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from eureka_lab.core.errors import ContractError
from eureka_lab.reward.contract import check_components


def _dtypes() -> dict[Any, Any]:
    import numpy as np
    import torch

    return {
        None: None,
        float: torch.float32,
        int: torch.int64,
        bool: torch.bool,
        np.float64: torch.float32,
        np.float32: torch.float32,
        np.float16: torch.float16,
        np.int64: torch.int64,
        np.int32: torch.int32,
        np.int16: torch.int16,
        np.int8: torch.int8,
        np.uint8: torch.uint8,
        np.bool_: torch.bool,
        "float64": torch.float32,
        "float32": torch.float32,
        "int64": torch.int64,
        "int32": torch.int32,
        "bool": torch.bool,
    }


def torch_dtype(dtype: Any) -> Any:
    """The torch dtype for a numpy-style ``dtype`` argument (float64 becomes float32)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return torch.float32 if dtype == torch.float64 else dtype
    table = _dtypes()
    try:
        return table[dtype]
    except (KeyError, TypeError):
        pass
    kind = getattr(dtype, "kind", None)  # a numpy dtype instance
    if kind == "f":
        return torch.float32
    if kind == "b":
        return torch.bool
    if kind in ("i", "u"):
        return torch.int64
    raise TypeError(f"dtype {dtype!r} is not supported on torch tensors")


def make_numpy(device: Any) -> dict[str, Any]:
    """numpy's allowed names over torch on ``device``: ``{"numpy": {...}, "linalg": {...}}``."""
    import array_api_compat.torch as xt
    import torch

    from eureka_lab.reward.check import LINALG_ALLOWED, NUMPY_ALLOWED

    dev = torch.device(device)

    def created(fn: Callable[..., Any]) -> Callable[..., Any]:
        def make(*args: Any, dtype: Any = None, **kw: Any) -> Any:
            kw.setdefault("device", dev)
            return fn(*args, dtype=torch_dtype(dtype), **kw)

        return make

    def asarray(x: Any, dtype: Any = None, **kw: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x if dtype is None else x.to(torch_dtype(dtype))
        out = torch.as_tensor(x, device=dev)
        if dtype is not None:
            return out.to(torch_dtype(dtype))
        return out.float() if out.is_floating_point() else out

    def like(fn: Callable[..., Any]) -> Callable[..., Any]:
        def make(x: Any, *args: Any, dtype: Any = None, **kw: Any) -> Any:
            return fn(x, *args, dtype=torch_dtype(dtype), **kw)

        return make

    aliases: dict[str, Any] = {
        "absolute": xt.abs,
        "fabs": xt.abs,
        "power": xt.pow,
        "float_power": xt.pow,
        "arcsin": xt.asin,
        "arccos": xt.acos,
        "arctan": xt.atan,
        "arctan2": xt.atan2,
        "arcsinh": xt.asinh,
        "arccosh": xt.acosh,
        "arctanh": xt.atanh,
        "concatenate": xt.concat,
        "amax": xt.max,
        "amin": xt.min,
        "around": xt.round,
        "rint": xt.round,
        "mod": xt.remainder,
        "fmod": torch.fmod,
        "true_divide": xt.divide,
        "deg2rad": torch.deg2rad,
        "rad2deg": torch.rad2deg,
        "radians": torch.deg2rad,
        "degrees": torch.rad2deg,
        "isclose": torch.isclose,
        "allclose": torch.allclose,
        "nan_to_num": torch.nan_to_num,
        "hypot": torch.hypot,
        "cbrt": lambda x: torch.sign(x) * torch.abs(x) ** (1.0 / 3.0),
        "exp2": torch.exp2,
        "heaviside": torch.heaviside,
        "asarray": asarray,
        "array": asarray,
        "asanyarray": asarray,
        "ascontiguousarray": asarray,
        "copy": lambda x: asarray(x).clone(),
        "zeros": created(xt.zeros),
        "ones": created(xt.ones),
        "full": created(xt.full),
        "arange": created(xt.arange),
        "linspace": created(xt.linspace),
        "eye": created(xt.eye),
        "zeros_like": like(xt.zeros_like),
        "ones_like": like(xt.ones_like),
        "full_like": like(xt.full_like),
        "hstack": lambda xs: torch.hstack(list(xs)),
        "vstack": lambda xs: torch.vstack(list(xs)),
        "column_stack": lambda xs: torch.column_stack(list(xs)),
        "ptp": lambda x, axis=None: xt.max(x, axis=axis) - xt.min(x, axis=axis),
        "average": xt.mean,
        "median": lambda x, axis=None: torch.median(x) if axis is None else x.median(axis)[0],
        "count_nonzero": lambda x, axis=None: torch.count_nonzero(x, dim=axis),
        "shape": lambda x: tuple(x.shape),
        "ndim": lambda x: x.ndim,
        "size": lambda x: x.numel(),
        "float64": torch.float32,
        "float32": torch.float32,
        "float16": torch.float16,
        "float_": torch.float32,
        "int64": torch.int64,
        "int32": torch.int32,
        "int16": torch.int16,
        "int8": torch.int8,
        "int_": torch.int64,
        "uint8": torch.uint8,
        "bool_": torch.bool,
        "pi": math.pi,
        "e": math.e,
        "inf": math.inf,
        "nan": math.nan,
        "newaxis": None,
        "euler_gamma": 0.5772156649015329,
    }
    names: dict[str, Any] = {}
    for name in NUMPY_ALLOWED:
        if name in aliases:
            names[name] = aliases[name]
        elif hasattr(xt, name):
            names[name] = getattr(xt, name)
    linalg = {
        n: getattr(xt.linalg, n) if hasattr(xt.linalg, n) else getattr(torch.linalg, n)
        for n in LINALG_ALLOWED
        if hasattr(xt.linalg, n) or hasattr(torch.linalg, n)
    }
    if "norm" in linalg:
        linalg["norm"] = lambda x, ord=None, axis=None, keepdims=False: torch.linalg.norm(  # noqa: A002
            x, ord=ord, dim=axis, keepdim=keepdims
        )
    return {"numpy": names, "linalg": linalg}


def install_array_methods() -> None:
    """Give tensors the numpy array methods model-written rewards call and torch lacks
    (``astype``, ``copy``). Only for the process that runs reward code on tensors."""
    import torch

    if not hasattr(torch.Tensor, "astype"):
        torch.Tensor.astype = lambda self, dtype, **_: self.to(torch_dtype(dtype))  # type: ignore[attr-defined]
    if not hasattr(torch.Tensor, "copy"):
        torch.Tensor.copy = lambda self: self.clone()  # type: ignore[attr-defined]


def check_output(result: Any, n_envs: int, tolerance: float = 1e-3) -> tuple[Any, dict[str, Any]]:
    """Validate a reward's output on tensors, as :func:`eureka_lab.reward.contract.check_reward_output`
    does on arrays; ContractError names the problem. Returns float32 tensors."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise ContractError(
            f"compute_reward must return (total, components), got {type(result).__name__}"
        )
    total, components = result
    total = _as_batch(total, n_envs, "total reward")
    check_components(components)
    comps = {
        name: _as_batch(value, n_envs, f"component {name!r}", total)
        for name, value in components.items()
    }
    import torch

    # One wait for the device per call: every check in one boolean; the slow path below
    # only runs to name what failed.
    summed = torch.stack(list(comps.values())).sum(0)
    gap = (summed - total).abs().max()
    finite = torch.isfinite(torch.stack([total, *comps.values()])).all()
    if bool(finite & (gap <= tolerance * (1.0 + total.abs().max()))):
        return total, comps
    for what, value in [
        ("total reward", total),
        *((f"component {k!r}", v) for k, v in comps.items()),
    ]:
        if not bool(torch.isfinite(value).all()):
            raise ContractError(f"{what} has non-finite values (NaN or inf)")
    raise ContractError(
        f"the components do not sum to the total (largest gap {float(gap):.3g}); return the "
        "sum of the components as the total"
    )


def _as_batch(value: Any, n_envs: int, what: str, like: Any = None) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ContractError(f"{what} is not numeric: {e}") from None
        if like is not None:
            value = value.to(like.device)
    value = value.to(torch.float32)
    if value.ndim == 0:
        raise ContractError(
            f"{what} is a scalar; it must have shape ({n_envs},), one value per env"
        )
    if tuple(value.shape) != (n_envs,):
        raise ContractError(
            f"{what} has shape {tuple(value.shape)}; it must have shape ({n_envs},)"
        )
    return value


class TensorReward:
    """Applies a reward loaded over torch to one batched transition of tensors, checked
    (the tensor twin of :class:`eureka_lab.reward.applied.RewardComputer`)."""

    def __init__(self, reward_fn: Any) -> None:
        self.reward_fn = reward_fn

    def batched(
        self, obs: Any, actions: Any, next_obs: Any, info: dict[str, Any], env_rewards: Any
    ) -> tuple[Any, dict[str, Any]]:
        from eureka_lab.reward.applied import ENV_COMPONENT

        if self.reward_fn is None:
            total = env_rewards.float()
            return total, {ENV_COMPONENT: total}
        from eureka_lab.reward.loader import call_reward

        return check_output(call_reward(self.reward_fn, obs, actions, next_obs, info), len(obs))


def to_tensor(x: Any) -> Any:
    """A numpy array (or number) as a CPU tensor, floats as float32."""
    import numpy as np
    import torch

    t = torch.as_tensor(np.asarray(x))
    return t.float() if t.is_floating_point() else t


class TensorCheck:
    """Validation's run on tensors: the reward loaded over torch, on the same numpy
    transitions made tensors, must work and give the numpy result to float32 precision."""

    def __init__(self, reward_fn: Any) -> None:
        self.reward = TensorReward(reward_fn)

    def __call__(
        self,
        obs: Any,
        actions: Any,
        next_obs: Any,
        info: dict[str, Any],
        env_rewards: Any,
        expected: Any,
    ) -> None:
        import numpy as np

        try:
            total, _ = self.reward.batched(
                to_tensor(obs),
                to_tensor(actions),
                to_tensor(next_obs),
                {k: to_tensor(v) for k, v in info.items()},
                to_tensor(env_rewards),
            )
        except Exception as e:
            raise ContractError(
                f"the reward works on numpy arrays but not on the torch tensors this task's "
                f"trainer gives it ({type(e).__name__}: {e}). It gets `np` as numpy's names over "
                "torch: use numpy functions on whole arrays (np.sum(x, axis=1), np.clip, "
                "np.where, x.astype(np.float32)); no Python float() or int() of arrays, no "
                "numpy-only functions, no lists of per-env values"
            ) from e
        gap = float(np.max(np.abs(total.double().numpy() - expected)))
        if gap > 1e-3 * (1.0 + float(np.max(np.abs(expected)))):
            raise ContractError(
                f"the reward gives different values on torch tensors than on numpy arrays "
                f"(largest gap {gap:.3g}): keep it to numpy's functions on whole arrays"
            )
