"""Reward code on torch tensors: the ``numpy`` it imports there.

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
    from array_api_compat.torch import linalg as xt_linalg

    from eureka_lab.reward.allowed import LINALG_ALLOWED, NUMPY_ALLOWED

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

    def copied(name: str) -> Callable[..., Any]:
        """A function array_api_compat.torch copies from torch when imported, out of a type
        checker's sight."""
        fn: Callable[..., Any] = getattr(xt, name)
        return fn

    aliases: dict[str, Any] = {
        "absolute": copied("abs"),
        "fabs": copied("abs"),
        "power": xt.pow,
        "float_power": xt.pow,
        "arcsin": copied("asin"),
        "arccos": copied("acos"),
        "arctan": copied("atan"),
        "arctan2": xt.atan2,
        "arcsinh": copied("asinh"),
        "arccosh": copied("acosh"),
        "arctanh": copied("atanh"),
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
        "zeros_like": like(copied("zeros_like")),
        "ones_like": like(copied("ones_like")),
        "full_like": like(copied("full_like")),
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
        n: getattr(xt_linalg, n) if hasattr(xt_linalg, n) else getattr(torch.linalg, n)
        for n in LINALG_ALLOWED
        if hasattr(xt_linalg, n) or hasattr(torch.linalg, n)
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

    methods: dict[str, Callable[..., torch.Tensor]] = {
        "astype": lambda self, dtype, **_: self.to(torch_dtype(dtype)),
        "copy": lambda self: self.clone(),
    }
    for name, method in methods.items():
        if not hasattr(torch.Tensor, name):
            setattr(torch.Tensor, name, method)
