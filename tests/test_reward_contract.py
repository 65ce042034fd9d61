"""The reward contract: what check_reward_output rejects, and which info keys reach the reward."""

from __future__ import annotations

import numpy as np
import pytest

from eureka_lab.core.errors import ContractError
from eureka_lab.reward.contract import batch_info, check_reward_output, visible_info_key

N = 3
ONES = np.ones(N)


def test_valid_output_passes_as_float_arrays():
    total, comps = check_reward_output(
        (np.array([1, 2, 3]), {"a": np.array([0.5, 1, 1.5]), "b": [0.5, 1, 1.5]}), N
    )
    assert total.dtype == np.float64 and total.shape == (N,)
    assert set(comps) == {"a", "b"}
    np.testing.assert_allclose(comps["b"], [0.5, 1, 1.5])


@pytest.mark.parametrize(
    "result, match",
    [
        (ONES, r"must return \(total, components\), got ndarray"),
        ((ONES, {"a": ONES}, 1), "got tuple of length 3"),
        ((1.0, {"a": 1.0}), r"total reward is a scalar; it must have shape \(3,\)"),
        ((np.ones(4), {"a": np.ones(4)}), r"total reward has shape \(4,\); it must have shape"),
        ((np.ones((N, 1)), {"a": ONES}), r"total reward has shape \(3, 1\)"),
        ((np.array([1.0, np.nan, 1.0]), {"a": ONES}), "total reward has non-finite values"),
        ((ONES, {"a": np.array([1.0, np.inf, 1.0])}), "component 'a' has non-finite values"),
        ((ONES, {"a": np.ones(2)}), r"component 'a' has shape \(2,\)"),
        ((ONES, {"a": 1.0}), "component 'a' is a scalar"),
        ((ONES, {"a": ["x", "y", "z"]}), "component 'a' is not numeric"),
        ((ONES, [ONES]), "non-empty dict of named components"),
        ((ONES, {}), "non-empty dict of named components"),
        ((ONES, {1: ONES}), "component names must be strings"),
        ((ONES, {"a": ONES, "b": ONES}), "components do not sum to the total"),
        ((2 * ONES, {"a": ONES}), r"largest gap 1"),
    ],
)
def test_bad_output_is_named(result, match):
    with pytest.raises(ContractError, match=match):
        check_reward_output(result, N)


def test_sum_tolerance_is_relative_to_scale():
    big = np.full(N, 1e6)
    check_reward_output((big, {"a": big + 1.0}), N)  # gap 1 on 1e6: rounding, accepted
    with pytest.raises(ContractError, match="do not sum"):
        check_reward_output((ONES, {"a": ONES + 0.01}), N)


@pytest.mark.parametrize(
    "key, visible",
    [
        ("x_position", True),
        ("distance_from_origin", True),
        ("x_velocity", True),
        ("reward_run", False),
        ("reward_ctrl", False),
        ("forward_reward", False),
        ("ctrl_cost", False),
        ("TimeLimit.truncated", False),
        ("terminal_observation", False),
        ("episode", False),
    ],
)
def test_visible_info_key(key, visible):
    assert visible_info_key(key) is visible


def test_batch_info_stacks_visible_numeric_common_keys():
    infos = [
        {
            "x_position": 1.0,
            "vec": [1.0, 2.0],
            "reward_run": 5.0,
            "reward_ctrl": -1.0,
            "TimeLimit.truncated": False,
            "terminal_observation": np.zeros(2),
            "name": "walker",
            "only_here": 1.0,
        },
        {
            "x_position": 2.0,
            "vec": [3.0, 4.0],
            "reward_run": 6.0,
            "reward_ctrl": -2.0,
            "TimeLimit.truncated": True,
            "terminal_observation": np.zeros(2),
            "name": "walker",
        },
    ]
    out = batch_info(infos)
    assert sorted(out) == ["vec", "x_position"]
    np.testing.assert_array_equal(out["x_position"], [1.0, 2.0])
    assert out["vec"].shape == (2, 2) and out["vec"].dtype == np.float64


def test_batch_info_empty():
    assert batch_info([]) == {}
    assert batch_info([{}, {}]) == {}
