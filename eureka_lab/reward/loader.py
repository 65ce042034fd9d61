"""Load untrusted reward code in-process, behind the static policy and a restricted runtime.

:func:`load_reward` checks the code with :func:`eureka_lab.reward.check.check_code`, then runs it
in a fresh namespace whose builtins are :data:`eureka_lab.reward.allowed.SAFE_BUILTINS` and whose
``import`` only grants ``numpy`` and ``math`` -- and for numpy a read-only proxy holding only
the reviewed names, so code that slips past the static check still cannot reach
``np.f2py``, ``np.load`` and the like. This is defence in depth, not an OS boundary: CPU,
memory and time limits belong to :mod:`eureka_lab.isolation.limits`.
:func:`call_reward` calls the loaded function on private copies of its inputs.
"""

from __future__ import annotations

import builtins
import dis
import math
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from eureka_lab.core.errors import ContractError
from eureka_lab.reward.allowed import LINALG_ALLOWED, NUMPY_ALLOWED, SAFE_BUILTINS, VALUE_ATTRIBUTES
from eureka_lab.reward.check import check_code
from eureka_lab.reward.contract import FUNCTION_NAME

__all__ = ["call_reward", "load_reward"]


class _FrozenModule(types.ModuleType):
    """A module object holding a fixed set of names; it refuses new or changed attributes."""

    def __init__(self, name: str, source: Any, names: frozenset[str], **extra: Any) -> None:
        super().__init__(name)
        values = {n: getattr(source, n) for n in sorted(names) if hasattr(source, n)}
        values.update(extra)
        self.__dict__.update(values)
        self.__dict__["__all__"] = tuple(sorted(values))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the sandboxed module {self.__name__!r} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the sandboxed module {self.__name__!r} is read-only")

    def __getattr__(self, name: str) -> Any:  # only reached for missing names
        raise AttributeError(f"{name!r} is not available in the sandboxed {self.__name__!r}")


def _make_modules() -> dict[str, types.ModuleType]:
    linalg = _FrozenModule("numpy.linalg", np.linalg, LINALG_ALLOWED)
    numpy = _FrozenModule("numpy", np, NUMPY_ALLOWED, linalg=linalg)
    public_math = frozenset(n for n in dir(math) if not n.startswith("_"))
    return {"numpy": numpy, "math": _FrozenModule("math", math, public_math)}


_MODULES = _make_modules()


def _torch_modules(device: str) -> dict[str, types.ModuleType]:
    """The modules reward code imports on a torch trainer: numpy's names over torch."""
    from eureka_lab.reward.numpy_on_torch import install_array_methods, make_numpy

    names = make_numpy(device)
    install_array_methods()
    linalg = _FrozenModule("numpy.linalg", types.SimpleNamespace(), frozenset(), **names["linalg"])
    numpy = _FrozenModule(
        "numpy", types.SimpleNamespace(), frozenset(), **names["numpy"], linalg=linalg
    )
    return {"numpy": numpy, "math": _MODULES["math"]}


def _importer(modules: Mapping[str, types.ModuleType]) -> Callable[..., types.ModuleType]:
    def restricted_import(
        name: str,
        globals: Mapping[str, Any] | None = None,  # noqa: A002 - the signature of __import__
        locals: Mapping[str, Any] | None = None,  # noqa: A002
        fromlist: tuple[str, ...] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        if level != 0 or name not in modules:
            raise ImportError(
                f"import of {name!r} is not allowed in reward code (only numpy, math)"
            )
        module = modules[name]
        for item in fromlist or ():
            if item == "*" or not hasattr(module, item):
                raise ImportError(f"cannot import {item!r} from the sandboxed {name!r}")
        return module

    return restricted_import


_restricted_import = _importer(_MODULES)


def _safe_builtins(modules: Mapping[str, types.ModuleType] | None = None) -> dict[str, Any]:
    safe = {n: getattr(builtins, n) for n in SAFE_BUILTINS}
    safe["__import__"] = _restricted_import if modules is None else _importer(modules)
    return safe


def load_reward(code: str, namespace: str = "numpy", device: str = "cpu") -> Callable[..., Any]:
    """Check ``code`` against the policy, run it in the sandbox, return ``compute_reward``.

    ``namespace="torch"``: its ``import numpy`` gives numpy's names over torch tensors on
    ``device`` (:mod:`eureka_lab.reward.numpy_on_torch`), for trainers whose simulations are tensors.
    Raises ContractError naming every policy violation, or what went wrong while the
    module ran.
    """
    violations = check_code(code)
    if violations:
        raise ContractError(
            f"the reward code breaks the policy ({len(violations)} problem"
            f"{'s' if len(violations) > 1 else ''}): " + "; ".join(violations)
        )
    modules = _torch_modules(device) if namespace == "torch" else None
    return _exec_reward(code, modules=modules)


_READ_ATTRIBUTE_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR", "IMPORT_FROM"})
_WRITE_ATTRIBUTE_OPS = frozenset({"STORE_ATTR", "DELETE_ATTR"})
"""Opcodes that take an attribute name from ``co_names``. ``MATCH_CLASS`` takes its names
from a constant tuple instead: it is refused outright, and string constants are checked."""
_MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))
READABLE_ATTRIBUTES = (
    VALUE_ATTRIBUTES | NUMPY_ALLOWED | LINALG_ALLOWED | _MATH_NAMES | frozenset({"linalg"})
)
"""Every attribute name compiled reward code may read: the reviewed attributes of values
and the names of the sandboxed modules. The bytecode cannot tell ``np.sqrt`` from
``x.sqrt``, so a module's name is readable on a value too; ``tests/test_reward_numpy_on_torch.py``
checks that none of them reaches anything but computing on arrays, tensors, storages, dicts,
lists or strings."""
# A module docstring, annotations, and the restricted importer (same as an import statement).
_ALLOWED_DUNDERS = frozenset({"__doc__", "__annotations__", "__import__"})


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _string_constants(co: types.CodeType) -> Iterator[str]:
    """The string constants of one code object, looking inside tuples and frozensets."""
    todo = list(co.co_consts)
    while todo:
        c = todo.pop()
        if isinstance(c, str):
            yield c
        elif isinstance(c, tuple | frozenset):
            todo.extend(c)


def _bytecode_violations(code: types.CodeType) -> list[str]:
    """Names in the compiled code that the policy's attribute rules forbid.

    The runtime twin of the AST policy, on what will actually run: any dunder name
    (``__class__``, ``__subclasses__``, ``__globals__``, ``__builtins__``), any attribute
    read outside :data:`READABLE_ATTRIBUTES` (``untyped_storage``, ``tofile``, ``ctypes``,
    ``gi_frame``, ``format``, ...), and any attribute write or delete. Restricted builtins
    alone do not stop ``().__class__.__bases__[0].__subclasses__()``.
    """
    bad: set[str] = set()
    for co in _code_objects(code):
        bad.update(
            f"`{n}`" for n in co.co_names if n.startswith("__") and n not in _ALLOWED_DUNDERS
        )
        # Names can also travel as string constants (MATCH_CLASS's keyword names, or a
        # string handed to something that looks attributes up): no dunder, even as data.
        bad.update(f"`{c}` (as a constant)" for c in _string_constants(co) if c.startswith("__"))
        for ins in dis.get_instructions(co):
            if ins.opname == "MATCH_CLASS":
                bad.add("`match` class patterns")
            if not isinstance(ins.argval, str) or ins.argval.startswith("__"):
                continue  # dunders are reported from co_names
            if ins.opname in _WRITE_ATTRIBUTE_OPS:
                bad.add(f"`.{ins.argval}` (written)")
            elif ins.opname in _READ_ATTRIBUTE_OPS and ins.argval not in READABLE_ATTRIBUTES:
                bad.add(f"`.{ins.argval}`")
    return sorted(bad)


def _exec_reward(
    code: str,
    filename: str = "<reward>",
    modules: Mapping[str, types.ModuleType] | None = None,
) -> Callable[..., Any]:
    """Run ``code`` in a fresh restricted namespace and return its ``compute_reward``.
    No AST policy check (callers outside this module are tests of the runtime layers); the
    bytecode check, restricted builtins, import and numpy proxy still apply."""
    namespace: dict[str, Any] = {
        "__builtins__": _safe_builtins(modules),
        "__name__": "eureka_reward",
    }
    try:
        compiled = compile(code, filename, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ContractError(f"the reward code does not compile: {type(e).__name__}: {e}") from None
    reached = _bytecode_violations(compiled)
    if reached:
        raise ContractError(
            "the reward code reaches names the sandbox forbids: " + ", ".join(reached[:10])
        )
    try:
        exec(compiled, namespace)  # noqa: S102 - the point of this module
    except Exception as e:
        raise ContractError(
            f"the reward module failed while loading: {type(e).__name__}: {e}"
        ) from None
    fn = namespace.get(FUNCTION_NAME)
    if not isinstance(fn, types.FunctionType):
        raise ContractError(f"the reward code does not define a function `{FUNCTION_NAME}`")
    return fn


def call_reward(fn: Callable[..., Any], obs: Any, action: Any, next_obs: Any, info: Any) -> Any:
    """Call a loaded reward on private copies of its inputs and return its result unchanged.

    In-place writes by the reward (``obs[:, 0] = 0``) land on the copies, so they cannot
    change what the policy sees or what fitness measures. ``info`` is a fresh dict.
    """
    info_copy = {k: _private(v) for k, v in (info or {}).items()}
    return fn(_private(obs), _private(action), _private(next_obs), info_copy)


def _private(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value).__name__ == "Tensor" and hasattr(value, "clone"):  # torch, not imported here
        return value.clone()
    if isinstance(value, Mapping):  # Dict observation spaces
        return {k: _private(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_private(v) for v in value)
    return value  # numbers, numpy scalars and strings are immutable
