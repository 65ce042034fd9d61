"""The reviewed lists of what reward code may use: builtins, numpy's names, ``numpy.linalg``,
the attributes of the values it holds, and what is refused by name, with why. The static
check (:mod:`.check`) and the sandbox's runtime layers (:mod:`.loader`) hold to the same
lists."""

from __future__ import annotations

import math

__all__ = [
    "LINALG_ALLOWED",
    "NUMPY_ALLOWED",
    "SAFE_BUILTINS",
    "VALUE_ATTRIBUTES",
    "refused_by_name",
    "value_attribute_message",
]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Builtins reward code may use; the sandbox's restricted ``__builtins__`` holds exactly these.
SAFE_BUILTINS = _names(
    """abs all any bool dict divmod enumerate filter float frozenset int isinstance len list
    map max min next pow range reversed round set slice sorted str sum tuple zip
    Exception ArithmeticError AssertionError FloatingPointError IndexError KeyError
    NotImplementedError OverflowError RuntimeError TypeError ValueError ZeroDivisionError"""
)

# Reviewed numpy names: elementwise maths, reductions, shaping, comparisons, dtypes and
# constants. Nothing that touches files, pointers, global state or randomness.
NUMPY_ALLOWED = _names(
    """
    pi e inf nan newaxis euler_gamma float16 float32 float64 int8 int16 int32 int64 uint8
    bool_ float_ int_
    abs absolute fabs sign negative positive reciprocal sqrt cbrt square power float_power
    exp exp2 expm1 log log2 log10 log1p logaddexp logaddexp2
    sin cos tan arcsin arccos arctan arctan2 hypot sinh cosh tanh arcsinh arccosh arctanh
    deg2rad rad2deg degrees radians unwrap
    add subtract multiply divide true_divide floor_divide mod remainder fmod divmod modf
    floor ceil trunc rint round around fix
    maximum minimum fmax fmin clip where select piecewise heaviside
    isnan isinf isfinite isclose allclose array_equal nan_to_num
    sum prod mean average median std var min max amin amax ptp argmin argmax cumsum cumprod
    nansum nanmean nanmax nanmin nanstd nanvar nanmedian nanargmin nanargmax percentile
    quantile count_nonzero diff gradient interp convolve trapezoid
    dot vdot inner outer matmul cross einsum tensordot linspace arange
    all any logical_and logical_or logical_not logical_xor
    greater greater_equal less less_equal equal not_equal
    array asarray asanyarray ascontiguousarray copy zeros zeros_like ones ones_like
    full full_like eye identity diag diagonal tri tril triu
    reshape ravel squeeze expand_dims transpose swapaxes moveaxis atleast_1d atleast_2d
    atleast_3d broadcast_to broadcast_arrays stack hstack vstack dstack column_stack
    concatenate split array_split tile repeat flip fliplr flipud roll rot90 take
    take_along_axis argsort sort unique searchsorted nonzero argwhere flatnonzero
    shape ndim size iscomplexobj isscalar result_type
    """
)

LINALG_ALLOWED = frozenset({"norm", "det", "inv", "solve", "pinv"})

# Reviewed attributes of the values reward code holds: arrays (numpy's, or torch tensors on
# the warp trainer), the ``info`` dict, lists, strings and the (values, indices) pairs torch's
# reductions return. Only reads and calls of these names: nothing reaches a file, a pointer,
# the memory under an array (``view``, ``data``, ``base``, ``ctypes``, storages), autograd
# (``grad_fn``, hooks), sharing or serialisation. ``.NAME`` on anything but the imported
# modules must be one of these: the static policy and the bytecode check both hold to it.
VALUE_ATTRIBUTES = _names(
    """
    shape ndim size dtype T real imag
    astype copy reshape ravel flatten squeeze transpose swapaxes clip round
    sum prod mean std var min max argmin argmax cumsum cumprod all any
    dot item tolist nonzero sort argsort repeat take diagonal conj fill
    values indices
    get items keys update setdefault pop
    append extend insert index count reverse
    startswith endswith lower upper strip split join replace
    """
)

# Attribute names rejected on any object: file/pointer access on arrays, frame and code
# introspection, the method resolution order, and str.format (it reaches attributes by name).
BAD_ATTRIBUTES = {
    "tofile": "it writes a file",
    "dump": "it writes a file",
    "dumps": "it pickles the array",
    "ctypes": "it exposes raw memory pointers",
    "mro": "it introspects the class hierarchy",
    "format": "format strings can reach attributes by name; use an f-string",
    "format_map": "format strings can reach attributes by name; use an f-string",
}
INTROSPECTION_PREFIXES = ("f_", "gi_", "co_", "tb_", "cr_", "ag_", "func_", "im_")

FORBIDDEN_NAMES = {
    **dict.fromkeys(("eval", "exec", "compile", "breakpoint"), "it runs arbitrary code"),
    **dict.fromkeys(("__import__",), "it imports modules"),
    **dict.fromkeys(("open", "input", "help", "exit", "quit"), "it reaches files or the terminal"),
    **dict.fromkeys(
        ("getattr", "setattr", "delattr", "hasattr", "globals", "locals", "vars"),
        "it accesses attributes or namespaces by name",
    ),
    **dict.fromkeys(
        ("memoryview", "type", "object", "super", "classmethod", "staticmethod", "property"),
        "it reaches the type machinery",
    ),
    "print": "printing from a reward is noise in the training logs; return components instead",
}

MODULES = {"numpy": "numpy", "math": "math"}
MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))


def value_attribute_message(attr: str) -> str:
    """Why ``.attr`` on a value is refused, and what to use (the policy's and the
    sandbox's one wording)."""
    return (
        f"`.{attr}` is not on the reviewed list of attributes of arrays, dicts, lists and "
        "strings; use numpy functions on whole arrays (np.NAME(x, axis=...)) instead. "
        "Allowed: " + ", ".join(sorted(VALUE_ATTRIBUTES))
    )


def refused_by_name(attr: str) -> bool:
    """Whether a name rule of :meth:`_Checker.check_names` already refuses ``.attr``, with
    its own message."""
    return attr.startswith("_") or attr in BAD_ATTRIBUTES or attr.startswith(INTROSPECTION_PREFIXES)
