"""The offline (LLM-free) backend: program search over seed rewards in the term form."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from eureka_lab.backends import BackendSettings, Evidence, Prompt, Usage
from eureka_lab.backends.base import ScoredCode
from eureka_lab.backends.offline import (
    OfflineBackend,
    normalise,
    parse_program,
    transplant,
)

SEED_RUN = """import numpy as np

SCALE = 0.5


def speed(obs):
    return obs[:, 0] * SCALE


def compute_reward(obs, action, next_obs, info):
    v = speed(next_obs)
    ctrl = np.square(action)
    components = {"forward": 1.0 * v, "energy": -0.1 * ctrl}
    total = sum(components.values())
    return total, components
"""

SEED_STAND = """import numpy as np

SCALE = 2.0


def lift(x):
    return np.tanh(x * SCALE)


def compute_reward(obs, action, next_obs, info):
    h = lift(next_obs[:, 1])
    v = np.abs(next_obs[:, 0] - obs[:, 0])
    components = {
        "height": 0.3 * h,
        "still": -0.05 * v,
        "alive": 1.0 * np.ones(obs.shape[0]),
    }
    total = sum(components.values())
    return total, components
"""

SEEDS = (SEED_RUN, SEED_STAND)


def backend(seed: int = 0, seeds: tuple[str, ...] = SEEDS) -> OfflineBackend:
    return OfflineBackend(BackendSettings(seed=seed, seeds=seeds))


def prompt(iteration=0, scored=(), key=None, purpose="sample", seeds=SEEDS, **kw) -> Prompt:
    ev = Evidence(iteration=iteration, seeds=seeds, scored=tuple(scored), **kw)
    return Prompt(
        (),
        purpose=purpose,
        iteration=iteration,
        evidence=ev,
        key=key or f"iter_{iteration:02d}/{purpose}",
    )


def code_of(text: str) -> str:
    m = re.search(r"```python\n(.*?)```", text, re.S)
    assert m, text
    return m.group(1)


def call(code: str, seed: int = 0):
    ns: dict = {}
    exec(compile(code, "<test>", "exec"), ns)
    rng = np.random.default_rng(seed)
    obs, next_obs = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    action = rng.normal(size=(4,))
    return ns["compute_reward"](obs, action, next_obs, {})


def terms(code: str) -> dict[str, str]:
    prog = parse_program(code)
    assert prog is not None, code
    return {k: ast.dump(e) for k, e in prog.terms}


def check_program(code: str) -> dict[str, np.ndarray]:
    assert parse_program(code) is not None  # still canonical, can be mutated again
    total, comps = call(code)
    assert np.shape(total) == (4,)
    assert comps and all(np.shape(v) == (4,) for v in comps.values())
    np.testing.assert_allclose(total, np.sum(list(comps.values()), axis=0))
    return comps


# --------------------------------------------------------------------------- iteration 0


def test_iteration_zero_gives_distinct_valid_programs():
    out = backend().complete(prompt(), 10)
    assert len(out) == 10
    codes = []
    for c in out:
        assert c.ok and c.model == "offline" and c.usage == Usage()
        assert c.meta["operators"]
        first = c.text.splitlines()[0]
        assert first.endswith(".") and "```" not in first
        code = code_of(c.text)
        tree = ast.parse(code)
        assert any(isinstance(s, ast.FunctionDef) and s.name == "compute_reward" for s in tree.body)
        check_program(code)
        codes.append(normalise(code))
    assert len(set(codes)) == 10


def test_iteration_zero_combines_seed_terms():
    out = backend().complete(prompt(), 16)
    names = [set(terms(code_of(c.text))) for c in out]
    mixed = [n for n in names if n & {"forward", "energy"} and n & {"height", "still", "alive"}]
    assert mixed, names
    assert any("combine" in c.meta["operators"] for c in out)


def test_settings_seeds_are_used_without_evidence():
    b = backend()
    out = b.complete(Prompt((), key="k"), 3)
    assert all(c.ok for c in out)


# --------------------------------------------------------------------------- later iterations


def scored_pool() -> list[ScoredCode]:
    stats = {"forward": [0.1, 0.5, 1.0], "energy": [-0.3, -0.2, -0.1]}
    mid = SEED_RUN.replace("-0.1 * ctrl", "-0.2 * ctrl")
    best = SEED_RUN.replace("1.0 * v", "2.0 * v")
    return [
        ScoredCode(SEED_STAND, 0.1, {"height": [0.1, 0.2], "still": [0, -0.1], "alive": [1, 1]}),
        ScoredCode(best, 5.0, stats),
        ScoredCode(mid, 1.0, stats),
        ScoredCode("def compute_reward(:", None, {}),
    ]


def test_children_descend_from_the_fittest():
    pool = scored_pool()
    best_terms = terms(pool[1].code)
    out = backend().complete(prompt(1, pool), 16)
    seen = {normalise(s.code) for s in pool}
    from_best = 0
    shared = []
    for c in out:
        code = code_of(c.text)
        check_program(code)
        assert normalise(code) not in seen
        if c.meta["parents"][0] == "candidate 2":
            from_best += 1
            child = terms(code)
            shared.append(len(set(child) & set(best_terms)) / len(best_terms))
    assert from_best >= 10
    assert np.mean(shared) >= 0.6
    assert len({normalise(code_of(c.text)) for c in out}) == 16


def test_constant_component_is_dropped_or_reweighted_more_often():
    parent = SEED_STAND.replace("1.0 * np.ones", "0.5 * np.ones")
    stats = {"height": [0.1, 0.4, 0.9], "still": [-0.2, -0.1, -0.05], "alive": [0.5, 0.5, 0.5]}
    pool = [ScoredCode(parent, 1.0, stats)]
    before = terms(parent)
    changed = {k: 0 for k in before}
    b = backend(seed=3)
    total = 0
    for i in range(12):
        for c in b.complete(prompt(1, pool, key=f"iter_01/sample/{i}"), 10):
            child = terms(code_of(c.text))
            total += 1
            for k, dump in before.items():
                if child.get(k) != dump:
                    changed[k] += 1
    rate = {k: v / total for k, v in changed.items()}
    assert rate["alive"] > 1.5 * max(rate["height"], rate["still"]), rate


def test_dominant_component_is_rescaled_down():
    stats = {"forward": [0.1, 0.5, 1.0], "energy": [-300.0, -200.0, -100.0]}
    pool = [ScoredCode(SEED_RUN, 1.0, stats)]
    out = backend().complete(prompt(1, pool), 10)
    rescaled = [c for c in out if "rescale" in c.meta["operators"]]
    assert len(rescaled) >= 5
    for c in rescaled:
        prog = parse_program(code_of(c.text))
        energy = dict(prog.terms).get("energy")
        if energy is not None:
            total, comps = call(code_of(c.text))
            _, old = call(SEED_RUN)
            assert np.all(np.abs(comps["energy"]) < np.abs(old["energy"]))


def test_repair_returns_a_fresh_mutation_of_the_best():
    pool = scored_pool()
    p = prompt(1, pool, purpose="repair", failed_code="def f(:", error="SyntaxError")
    out = backend().complete(p, 2)
    for c in out:
        assert c.ok and "repair-fallback" in c.meta["operators"]
        assert c.meta["parents"] == ["candidate 2"]
        code = code_of(c.text)
        check_program(code)
        assert normalise(code) != normalise(pool[1].code)


def test_repair_without_scored_mutates_a_seed():
    out = backend().complete(prompt(0, purpose="repair", failed_code="x = (", error="e"), 1)
    assert out[0].ok and out[0].meta["parents"][0].startswith("seed")
    check_program(code_of(out[0].text))


def test_children_stay_mutable_over_generations():
    b = backend(seed=7)
    pool: list[ScoredCode] = []
    rng = np.random.default_rng(0)
    for it in range(4):
        out = b.complete(prompt(it, pool), 6)
        for c in out:
            code = code_of(c.text)
            comps = check_program(code)
            pool.append(
                ScoredCode(
                    code, float(rng.normal()), {k: [float(v.mean())] * 2 for k, v in comps.items()}
                )
            )
    assert len({normalise(s.code) for s in pool}) == len(pool)


# --------------------------------------------------------------------------- add-term


RECEIVER = """import numpy as np

K = 3.0


def shape(x):
    return np.exp(-K * x)


def compute_reward(obs, action, next_obs, info):
    d = np.abs(next_obs[:, 0])
    g = d * 2.0
    components = {"near": 1.0 * shape(d), "gap": -0.5 * g}
    total = sum(components.values())
    return total, components
"""

DONOR = """import math

import numpy as np

K = 0.25
OFFSET = 1.5


def base(x):
    return x + OFFSET


def shape(x):
    return np.tanh(K * base(x))


def compute_reward(obs, action, next_obs, info):
    d = next_obs[:, 1] - obs[:, 1]
    g = np.abs(action)
    up = shape(d) * math.pi
    components = {"lift": 0.7 * up, "effort": -0.1 * g, "near": 2.0 * d}
    total = sum(components.values())
    return total, components
"""


def test_add_term_carries_dependencies_and_renames_clashes():
    recv, donor = parse_program(RECEIVER), parse_program(DONOR)
    child, keys = transplant(recv, donor, ["lift", "near"])
    assert keys == ["lift", "near_2"]
    code = child.render()
    assert parse_program(code) is not None
    _, want_r = call(RECEIVER)
    _, want_d = call(DONOR)
    total, comps = call(code)
    assert set(comps) == {"near", "gap", "lift", "near_2"}
    np.testing.assert_allclose(comps["near"], want_r["near"])
    np.testing.assert_allclose(comps["gap"], want_r["gap"])
    np.testing.assert_allclose(comps["lift"], want_d["lift"])
    np.testing.assert_allclose(comps["near_2"], want_d["near"])
    np.testing.assert_allclose(total, np.sum(list(comps.values()), axis=0))
    # the identical import is shared, math is brought along, unrelated donor code is not
    assert code.count("import numpy as np") == 1
    assert "import math" in code
    assert "effort" not in code


def test_add_term_shares_identical_definitions():
    recv = parse_program(SEED_RUN)
    donor = parse_program(SEED_RUN.replace('"energy": -0.1 * ctrl', '"effort": -0.3 * ctrl'))
    child, keys = transplant(recv, donor, ["effort"])
    code = child.render()
    assert keys == ["effort"]
    assert "ctrl_2" not in code and code.count("np.square(action)") == 1
    check_program(code)


# --------------------------------------------------------------------------- determinism, errors


def test_deterministic_given_settings_and_key():
    pool = scored_pool()
    a = backend(seed=5).complete(prompt(1, pool, key="iter_01/sample"), 6)
    b = backend(seed=5).complete(prompt(1, pool, key="iter_01/sample"), 6)
    assert [c.text for c in a] == [c.text for c in b]
    assert [c.meta for c in a] == [c.meta for c in b]
    other = backend(seed=5).complete(prompt(1, pool, key="iter_01/other"), 6)
    assert [c.text for c in other] != [c.text for c in a]
    reseeded = backend(seed=6).complete(prompt(1, pool, key="iter_01/sample"), 6)
    assert [c.text for c in reseeded] != [c.text for c in a]


@pytest.mark.parametrize(
    "seeds", [(), ("def compute_reward(obs, action, next_obs, info):\n    return 0\n",)]
)
def test_without_usable_seeds_returns_errors(seeds):
    out = backend(seeds=seeds).complete(prompt(0, seeds=seeds), 3)
    assert len(out) == 3
    for c in out:
        assert not c.ok and c.text is None
        assert "seed_rewards" in c.error and c.model == "offline"


def test_failed_candidates_alone_fall_back_to_errors_without_seeds():
    pool = [ScoredCode(SEED_RUN, None, {})]
    out = backend(seeds=()).complete(prompt(1, pool, seeds=()), 1)
    assert not out[0].ok and "seed_rewards" in out[0].error


def test_scored_candidates_without_seeds_still_evolve():
    pool = [ScoredCode(SEED_STAND, 1.0, {})]
    out = backend(seeds=()).complete(prompt(1, pool, seeds=()), 4)
    assert all(c.ok for c in out)
    for c in out:
        check_program(code_of(c.text))


LLM_STYLE = """import numpy as np


def compute_reward(obs, action, next_obs, info):
    speed_temp = 0.5
    speed = np.exp(speed_temp * next_obs[:, 0]) - 1.0
    total_reward = speed - 0.1 * np.square(action)
    return total_reward, {"speed": speed, "ctrl": -0.1 * np.square(action)}
"""


def test_llm_style_candidates_are_brought_into_the_term_form():
    prog = parse_program(LLM_STYLE)
    assert prog is not None and [k for k, _ in prog.terms] == ["speed", "ctrl"]
    alt = LLM_STYLE.replace(
        "    return total_reward, {",
        "    reward_components = {",
    ).replace(
        "np.square(action)}", "np.square(action)}\n    return total_reward, reward_components"
    )
    assert [k for k, _ in parse_program(alt).terms] == ["speed", "ctrl"]
    pool = [ScoredCode(LLM_STYLE, 2.0, {"speed": [0.1, 0.3], "ctrl": [-0.2, -0.1]})]
    for c in backend().complete(prompt(1, pool), 4):
        code = code_of(c.text)
        check_program(code)
        assert "total_reward" not in code  # dead code pruned, canonical tail rebuilt
