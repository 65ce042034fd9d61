"""Reward code on torch tensors: the numpy it imports there, its output check, and the
validation that sends a numpy-only reward back with the reason."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import torch

from eureka_lab.batched import GymBatch
from eureka_lab.core.errors import ContractError
from eureka_lab.reward.applied import check_output, to_tensor
from eureka_lab.reward.contract import check_reward_output
from eureka_lab.reward.loader import call_reward, load_reward
from eureka_lab.reward.validate import validate
from eureka_lab.task.load import load_task

pytest.importorskip("array_api_compat")


def _transition(task, n=4, steps=5):
    batch = GymBatch(task.make_env, n)
    obs = batch.reset(0)
    batch.action_space.seed(0)
    for _ in range(steps):
        actions = np.stack([batch.action_space.sample() for _ in range(n)])
        step = batch.step(actions)
        before, obs = obs, step.obs
    return before, actions, step.reached, step.info


REWARDS = [
    (path, ref)
    for path in sorted(glob.glob("envs/*.yaml"))
    for task in [load_task(path)]
    for ref in [*task.seed_rewards, task.human_reward, task.sparse_reward]
    if ref and ref != "env"
]


@pytest.mark.parametrize(("path", "ref"), REWARDS)
def test_every_builtin_reward_runs_on_tensors_and_equals_numpy(path, ref):
    task = load_task(path)
    code = task.reward_source(ref)
    obs, actions, reached, info = _transition(task)
    expected, _ = check_reward_output(
        call_reward(load_reward(code), obs, actions, reached, info), 4
    )
    on_torch = load_reward(code, namespace="torch")
    result = call_reward(
        on_torch,
        to_tensor(obs),
        to_tensor(actions),
        to_tensor(reached),
        {k: to_tensor(v) for k, v in info.items()},
    )
    total, comps = check_output(result, 4)
    assert total.dtype == torch.float32 and all(c.dtype == torch.float32 for c in comps.values())
    np.testing.assert_allclose(total.double().numpy(), expected, rtol=1e-4, atol=1e-4)


def test_the_namespace_speaks_numpy_in_float32():
    np_t = load_reward(
        "import numpy as np\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    a = np.concatenate([obs, next_obs], axis=1).astype(np.float64)\n"
        "    b = np.clip(np.power(a, 2), 0.0, 4.0).sum(axis=1)\n"
        "    c = np.where(np.abs(obs[:, 0]) > 0.5, 1.0, 0.0) * np.linalg.norm(obs, axis=1)\n"
        "    d = np.zeros(obs.shape[0]) + np.arctan2(obs[:, 0], 1.0) * 0.0\n"
        "    return b + c + d, {'b': b, 'c': c, 'd': d}\n",
        namespace="torch",
    )
    obs = torch.tensor([[1.0, 2.0], [0.1, -0.2]])
    total, comps = check_output(np_t(obs, obs[:, :1], obs, {}), 2)
    assert total.dtype == torch.float32
    expected = np.clip(np.concatenate([obs, obs], 1) ** 2, 0, 4).sum(1) + np.where(
        np.abs(obs[:, 0]) > 0.5, 1.0, 0.0
    ) * np.linalg.norm(obs.numpy(), axis=1)
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-6)


NUMPY_ONLY = """
import numpy as np

def compute_reward(obs, action, next_obs, info):
    share = np.abs(next_obs[:, 8:]).sum(axis=1) / next_obs.size  # a method on a tensor
    return share, {"share": share}
"""


def test_a_numpy_only_reward_is_sent_back_saying_why():
    task = load_task("half_cheetah")

    def load(namespace="numpy", device="cpu"):
        return load_reward(NUMPY_ONLY, namespace, device)

    assert validate(task, load, n_envs=2, steps=2)["ok"]  # fine on numpy
    with pytest.raises(ContractError, match="not on the torch tensors") as caught:
        validate(task, load, n_envs=2, steps=2, on_torch=True)
    assert "np.sum(x, axis=1)" in str(caught.value)


def test_a_reward_that_differs_on_tensors_is_refused():
    differs = (
        "import numpy as np\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    big = np.exp(np.ones(obs.shape[0]) * 30.0) - np.exp(np.ones(obs.shape[0]) * 30.0 - 1e-9)\n"
        "    return big, {'big': big}\n"
    )
    task = load_task("half_cheetah")

    def load(namespace="numpy", device="cpu"):
        return load_reward(differs, namespace, device)

    with pytest.raises(ContractError, match="different values on torch"):
        validate(task, load, n_envs=2, steps=1, on_torch=True)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (torch.ones(3), "must return (total, components)"),
        ((torch.ones(2), {"a": torch.ones(2)}), "shape (2,); it must have shape (3,)"),
        ((torch.full((3,), float("nan")), {"a": torch.ones(3)}), "non-finite"),
        ((torch.ones(3), {"a": torch.zeros(3)}), "do not sum"),
        ((torch.tensor(1.0), {"a": torch.ones(3)}), "is a scalar"),
    ],
)
def test_tensor_output_check_names_the_problem(result, words):
    with pytest.raises(ContractError, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_output(result, 3)


# Attacks on the objects reward code holds on this trainer: tensors and their storages. The
# red team read files through ``obs.untyped_storage().from_file(path, shared, size)``.
TENSOR_ATTACKS = {
    "storage_from_file": "s = obs.untyped_storage().from_file(WATCH, False, 6)",
    "typed_storage": "s = obs.storage()",
    "set_from_file": "obs.set_(obs.untyped_storage())",
    "data_ptr": "p = obs.data_ptr()",
    "share_memory": "obs.share_memory_()",
    "register_hook": "obs.register_hook(abs)",
    "grad_fn": "g = obs.grad_fn",
    "tensor_data": "d = obs.data",
    "to_numpy_view": "d = obs.numpy()",
    "dlpack": "d = obs.to_dlpack()",
    "pin_memory": "d = obs.pin_memory()",
    "info_storage": "s = info['x_velocity'].untyped_storage()",
}


@pytest.mark.parametrize("attack", sorted(TENSOR_ATTACKS))
def test_tensor_attributes_off_the_list_are_refused_by_policy_and_namespace(attack, tmp_path):
    """The static policy refuses each attribute with the reviewed list in its message, and
    the bytecode check (the namespace's half) refuses the same code when the policy is
    skipped: nothing reaches a file."""
    from eureka_lab.reward.check import check_code
    from eureka_lab.reward.loader import _exec_reward, _torch_modules

    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    body = TENSOR_ATTACKS[attack].replace("WATCH", repr(str(secret)))
    code = (
        "import numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        f"    {body}\n    r = np.sum(obs, axis=1)\n    return r, {{'r': r}}\n"
    )
    violations = check_code(code)
    assert any("[attribute]" in v and "not on the reviewed list" in v for v in violations), (
        violations
    )
    with pytest.raises(ContractError, match="breaks the policy"):
        load_reward(code, namespace="torch")
    with pytest.raises(ContractError, match="reaches names the sandbox forbids"):
        _exec_reward(code, modules=_torch_modules("cpu"))


def test_every_readable_attribute_of_a_tensor_or_storage_is_reviewed():
    """The names compiled reward code may read, looked up on what it can hold (tensors,
    storages, arrays, dicts, lists, strings): none reaches a file, a pointer, the memory
    under an array, autograd, sharing or serialisation. Adding such a name to the lists
    fails here."""
    import re

    from eureka_lab.reward.loader import READABLE_ATTRIBUTES

    risky = re.compile(
        r"storage|file|ptr|share|pin|^set_|hook|grad|save|load|numpy|^data$|^base$|view|"
        r"pickle|reduce|cuda|^to$|bytes|dlpack|ctypes|pointer|mmap|buffer"
    )
    held = [torch.zeros(2), torch.zeros(2).untyped_storage(), np.zeros(2), {}, [], ""]
    reachable = {name for value in held for name in READABLE_ATTRIBUTES if name in dir(value)}
    assert len(reachable) > 50  # the lookup itself works
    assert not {n for n in reachable if risky.search(n)}
    assert "untyped_storage" not in READABLE_ATTRIBUTES and "storage" not in READABLE_ATTRIBUTES
