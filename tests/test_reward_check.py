"""The static policy rejects a hostile corpus and accepts realistic rewards; the sandbox's
runtime layer holds even when the static check is bypassed."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from eureka_lab.core.errors import ContractError
from eureka_lab.reward.allowed import NUMPY_ALLOWED
from eureka_lab.reward.check import check_code
from eureka_lab.reward.loader import _MODULES, _exec_reward, call_reward, load_reward

GOOD_REWARD = '''
"""Run forward fast while staying upright; penalise effort."""
import math

import numpy as np
from math import pi

SPEED_TEMP = 0.5
UPRIGHT_TEMP = 2.0 * pi / 8
WEIGHTS = (1.0, 0.5, -0.01)


def _upright_bonus(obs, temperature=0.3):
    angle = np.arctan2(obs[:, 1], obs[:, 2])
    return np.exp(-np.abs(angle) / temperature)


def compute_reward(obs, action, next_obs, info):
    velocity = info["x_velocity"]
    speed = np.exp(np.clip(velocity, -5.0, 5.0) / SPEED_TEMP) - 1.0
    upright = WEIGHTS[1] * _upright_bonus(next_obs, UPRIGHT_TEMP)
    ctrl = WEIGHTS[2] * np.linalg.norm(action, axis=1) ** 2
    heading = 0.1 * np.cos(next_obs[:, 0] - math.pi / 2)
    alive = np.where(np.abs(next_obs[:, 1]) < 1.0, 1.0, 0.0)
    components = {
        "speed": WEIGHTS[0] * speed,
        "upright": upright,
        "ctrl": ctrl,
        "heading": heading,
        "alive": alive,
    }
    total = sum(components.values())
    return total, components
'''


def in_reward(body: str) -> str:
    """Wrap a statement in an otherwise valid reward."""
    body = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return (
        "import numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        f"{body}\n    r = obs[:, 0]\n    return r, {{'r': r}}\n"
    )


def at_module(stmt: str) -> str:
    return textwrap.dedent(stmt).strip() + "\n\n\n" + in_reward("pass")


HOSTILE = [
    ("subclasses", in_reward("x = ().__class__.__bases__[0].__subclasses__()"), "dunder"),
    ("builtins", in_reward("b = __builtins__"), "dunder"),
    ("getattr-f2py", in_reward("f = getattr(np, 'f2' + 'py')"), "forbidden-name"),
    ("np.f2py", in_reward("np.f2py.compile('x')"), "numpy-attribute"),
    ("np.ctypeslib", in_reward("p = np.ctypeslib.as_array"), "numpy-attribute"),
    ("np.testing", in_reward("np.testing.assert_equal(1, 1)"), "numpy-attribute"),
    ("np.ma.core.builtins", in_reward("b = np.ma.core.builtins"), "numpy-attribute"),
    ("np.save", in_reward("np.save('x.npy', obs)"), "numpy-attribute"),
    ("np.load", in_reward("obs = np.load('x.npy')"), "numpy-attribute"),
    ("np.fromfile", in_reward("obs = np.fromfile('/etc/passwd')"), "numpy-attribute"),
    ("np.memmap", in_reward("m = np.memmap('x', mode='w+')"), "numpy-attribute"),
    ("np.lib", in_reward("n = np.lib.npyio"), "numpy-attribute"),
    ("np.random", in_reward("n = np.random.rand(3)"), "non-deterministic"),
    ("linalg-other", in_reward("w = np.linalg.eig(obs)"), "numpy-attribute"),
    ("import os", at_module("import os"), "import"),
    ("import subprocess", in_reward("import subprocess"), "import"),
    ("import numpy.f2py", at_module("import numpy.f2py"), "import"),
    ("from numpy import f2py", at_module("from numpy import f2py"), "import"),
    ("from numpy import exp", at_module("from numpy import exp"), "use `np.NAME`"),
    ("from math import *", at_module("from math import *"), "import"),
    ("alias module", in_reward("m = np\nm.load('x')"), "module-alias"),
    ("pass module", in_reward("f = len(np)"), "module-alias"),
    ("rebind module", in_reward("np = 3"), "module-alias"),
    ("open", in_reward("open('/etc/passwd').read()"), "forbidden-name"),
    ("eval", in_reward("eval('1')"), "forbidden-name"),
    ("exec", in_reward("exec('x = 1')"), "forbidden-name"),
    ("compile", in_reward("compile('1', 'f', 'eval')"), "forbidden-name"),
    ("globals", in_reward("g = globals()"), "forbidden-name"),
    ("type", in_reward("t = type(obs)"), "forbidden-name"),
    ("print", in_reward("print(obs)"), "noise"),
    (
        "decorator",
        at_module("def deco(f):\n    return f\n\n\n@deco\ndef h(x):\n    return x"),
        "decorator",
    ),
    ("default arg call", at_module("def h(x=open('f')):\n    return x"), "default-value"),
    ("default arg np", at_module("def h(x=np.zeros(3)):\n    return x"), "default-value"),
    ("module-level print", at_module("print(1)"), "module-level"),
    ("module-level os.system", at_module("import os\nos.system('ls')"), "module-level"),
    ("module-level call value", at_module("X = np.zeros(3)"), "module-level"),
    ("module-level subscript", at_module("X = {}\nX['a'] = 1"), "module-level"),
    ("class", at_module("class A:\n    pass"), "module-level"),
    ("nested class", in_reward("class A:\n    pass"), "statement"),
    ("tofile", in_reward("obs.tofile('x')"), "attribute"),
    ("ctypes", in_reward("p = obs.ctypes.data"), "attribute"),
    ("frame", in_reward("g = (i for i in ()).gi_frame.f_back.f_globals"), "introspection"),
    ("str.format", in_reward("s = '{0.__class__}'.format(obs)"), "format"),
    ("format no dunder", in_reward("s = '{0.real}'.format(obs)"), "format"),
    ("private attr", in_reward("c = np._core"), "private-attribute"),
    ("lambda default", in_reward("f = lambda x=1: x"), "lambda-default"),
    ("global", in_reward("global X"), "statement"),
    ("nonlocal", at_module("def h():\n    x = 1\n\n    def g():\n        nonlocal x"), "statement"),
    ("with", in_reward("with obs:\n    pass"), "statement"),
    ("yield", in_reward("yield 1"), "statement"),
    ("async", at_module("async def h():\n    pass"), "statement"),
    ("try finally", in_reward("try:\n    pass\nfinally:\n    pass"), "statement"),
    ("annotation call", at_module("def h(x: open('f')):\n    return x"), "annotation"),
    ("module annotation call", at_module("X: len('ab') = 1"), "annotation"),
    ("unknown name", in_reward("x = os"), "unknown-name"),
    ("mro", in_reward("m = int.mro()"), "attribute"),
    (
        "wrong signature",
        "def compute_reward(obs, action, info):\n    return obs, {}\n",
        "signature",
    ),
    (
        "missing function",
        "def reward(obs, action, next_obs, info):\n    return obs, {}\n",
        "signature",
    ),
    (
        "kwargs signature",
        "def compute_reward(obs, action, next_obs, info, **kw):\n    return 1\n",
        "signature",
    ),
    ("syntax", "def compute_reward(obs, action, next_obs, info):\nreturn 1", "syntax"),
]


@pytest.mark.parametrize(("code", "rule"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_code_is_rejected_naming_the_rule(code: str, rule: str) -> None:
    violations = check_code(code)
    assert violations, f"accepted:\n{code}"
    assert any(rule in v for v in violations), violations
    assert all(v.startswith("line ") for v in violations)


@pytest.mark.parametrize(
    "code",
    [
        GOOD_REWARD,
        in_reward("d = np.linalg.det(np.eye(2)) + np.linalg.norm(obs)"),
        in_reward("from math import sqrt, tau\nx = sqrt(tau)"),
        in_reward("import math as m\nx = m.exp(1.0)"),
        in_reward("x = [v * 2 for v in range(3)]\ny = f'{x!r:>10}'"),
        in_reward("try:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    x = str(e)"),
        in_reward("x = np.float32(1.0)\ny = obs.astype(np.float64).T.sum(axis=0)"),
        in_reward("f = lambda v: v * 2\nz = f(obs)"),
    ],
)
def test_good_code_is_accepted(code: str) -> None:
    assert check_code(code) == []


def test_violation_names_the_line() -> None:
    code = in_reward("x = 1\ny = eval('2')")
    [v] = check_code(code)
    assert v.startswith("line 6: [forbidden-name] `eval` is not allowed")


def test_load_reward_runs_a_good_reward() -> None:
    fn = load_reward(GOOD_REWARD)
    rng = np.random.default_rng(0)
    obs, next_obs = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    action = rng.normal(size=(4, 2))
    total, comps = call_reward(fn, obs, action, next_obs, {"x_velocity": np.arange(4.0)})
    assert total.shape == (4,)
    assert set(comps) == {"speed", "upright", "ctrl", "heading", "alive"}
    np.testing.assert_allclose(total, sum(comps.values()))


def test_load_reward_raises_contract_error_with_every_violation() -> None:
    with pytest.raises(ContractError, match=r"2 problems.*eval.*open"):
        load_reward(in_reward("eval('1')\nopen('x')"))


def test_module_errors_at_load_become_contract_errors() -> None:
    with pytest.raises(ContractError, match="ZeroDivisionError"):
        load_reward("X = 1 / 0\n\n\n" + in_reward("pass"))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("import os", ImportError),
        ("import numpy.f2py", ImportError),
        ("x = open", NameError),
        ("x = getattr", NameError),
        ("x = __import__('os')", ImportError),
    ],
)
def test_runtime_layer_holds_without_the_static_check(body: str, error: type) -> None:
    fn = _exec_reward(in_reward(body))  # bypasses check_code on purpose
    with pytest.raises(error):
        fn(np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((2, 2)), {})


@pytest.mark.parametrize(
    "body",
    [
        "x = np.f2py",
        "from numpy import f2py",
        "x = np.load",
        "x = np.linalg.eig",
        "np.load = 1",
        "x = obs.tofile",
        "x = obs.view",
        "obs.shape = (4,)",
        "del info.x",
    ],
)
def test_the_bytecode_check_refuses_attributes_off_the_list(body: str) -> None:
    with pytest.raises(ContractError, match="reaches names the sandbox forbids"):
        _exec_reward(in_reward(body))  # bypasses check_code on purpose


@pytest.mark.parametrize("name", ["f2py", "load", "save", "ctypeslib", "lib", "random"])
def test_the_sandboxed_numpy_holds_only_reviewed_names(name: str) -> None:
    numpy = _MODULES["numpy"]
    assert not hasattr(numpy, name)
    with pytest.raises(AttributeError, match="read-only"):
        setattr(numpy, name, 1)
    assert (
        set(vars(numpy))
        - {"__all__", "__name__", "__doc__", "__package__", "__loader__", "__spec__", "linalg"}
        <= NUMPY_ALLOWED
    )


def test_exec_namespace_has_only_safe_builtins() -> None:
    fn = _exec_reward(in_reward("pass"))
    assert "open" not in fn.__globals__["__builtins__"]
    assert "eval" not in fn.__globals__["__builtins__"]


def test_call_reward_protects_the_callers_arrays() -> None:
    fn = load_reward(
        in_reward(
            """
            obs[:, 0] = 99.0
            next_obs *= 0.0
            action.fill(7.0)
            info["v"][:] = -1.0
            info["new"] = np.zeros(2)
            """
        )
    )
    obs, next_obs, action = np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1))
    info = {"v": np.ones(2)}
    total, _ = call_reward(fn, obs, action, next_obs, info)
    assert np.all(obs == 1.0) and np.all(next_obs == 1.0) and np.all(action == 1.0)
    assert np.all(info["v"] == 1.0) and set(info) == {"v"}
    np.testing.assert_array_equal(total, [99.0, 99.0])  # the reward saw its own writes
