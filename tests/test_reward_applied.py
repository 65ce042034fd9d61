"""The SB3 VecEnv reward wrapper: the candidate's reward in, true terminal observations,
the env's own return kept aside, and component statistics."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from eureka_lab.reward.applied import (
    ENV_COMPONENT,
    ComponentStats,
    EpisodeTracker,
    RewardComputer,
    make_reward_wrapper,
    true_next_obs,
)
from eureka_lab.task.load import task_from_dict

N_ENVS = 2
EPISODE = 20


@pytest.fixture(scope="module")
def task():
    return task_from_dict(
        {
            "name": "mc",
            "env_id": "MountainCar-v0",
            "description": "reach the flag",
            "timesteps": 512,
            "max_episode_steps": EPISODE,
        }
    )


class Recorder:
    """A contract reward (position + 10 * velocity) that records what it was called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, obs, action, next_obs, info):
        self.calls.append((obs.copy(), action.copy(), next_obs.copy(), dict(info)))
        pos, vel = next_obs[:, 0].astype(np.float64), 10.0 * next_obs[:, 1]
        return pos + vel, {"position": pos, "velocity": vel}


def _wrapped(task, reward_fn, seed=0):
    venv = DummyVecEnv([task.make_env for _ in range(N_ENVS)])
    venv.seed(seed)
    return make_reward_wrapper(venv, reward_fn)


def _run(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    obs = env.reset()
    out = []
    for _ in range(steps):
        actions = rng.integers(0, 3, size=N_ENVS)
        next_obs, rewards, dones, infos = env.step(actions)
        out.append((obs, actions, next_obs, rewards, dones, infos))
        obs = next_obs
    return out


def test_wrapper_returns_candidate_reward(task):
    fn = Recorder()
    env = _wrapped(task, fn)
    steps = _run(env, 5)
    assert len(fn.calls) == 5
    for (obs, actions, next_obs, rewards, _, _), call in zip(steps, fn.calls, strict=True):
        assert rewards.dtype == np.float32 and rewards.shape == (N_ENVS,)
        np.testing.assert_allclose(rewards, next_obs[:, 0] + 10 * next_obs[:, 1], rtol=1e-5)
        called_obs, called_actions, _, _ = call
        np.testing.assert_array_equal(called_obs, obs)
        np.testing.assert_array_equal(called_actions, actions)
    env.close()


def test_terminal_observation_is_next_obs_at_episode_end(task):
    fn = Recorder()
    env = _wrapped(task, fn)
    steps = _run(env, EPISODE + 2)
    ends = [t for t, s in enumerate(steps) if s[4].any()]
    assert ends == [EPISODE - 1]  # every env truncates together
    _, _, reset_obs, rewards, dones, infos = steps[EPISODE - 1]
    assert dones.all()
    terminal = np.stack([i["terminal_observation"] for i in infos])
    assert not np.allclose(terminal, reset_obs)  # SB3 returned the auto-reset observation
    called_next = fn.calls[EPISODE - 1][2]
    np.testing.assert_array_equal(called_next, terminal)
    np.testing.assert_allclose(rewards, terminal[:, 0] + 10 * terminal[:, 1], rtol=1e-5)
    assert "terminal_observation" not in fn.calls[EPISODE - 1][3]
    # The step after the reset starts from the reset observation, not the terminal one.
    np.testing.assert_array_equal(fn.calls[EPISODE][0], reset_obs)
    env.close()


def test_episode_tracker_keeps_env_return(task):
    env = _wrapped(task, Recorder())
    steps = _run(env, EPISODE)
    snap = env.episodes.snapshot()
    assert snap["episodes"] == N_ENVS
    assert snap["episode_length"] == EPISODE
    assert snap["env_return"] == -float(EPISODE)  # MountainCar: -1 a step
    candidate_return = sum(s[3].astype(np.float64) for s in steps).mean()
    assert snap["reward_return"] == pytest.approx(candidate_return, rel=1e-4)
    assert env.episodes.snapshot() == {
        "episodes": 0,
        "episode_length": None,
        "env_return": None,
        "reward_return": None,
    }
    env.close()


def test_component_stats_from_wrapper(task):
    env = _wrapped(task, Recorder())
    steps = _run(env, 6)
    stats = env.components.snapshot()
    assert set(stats) == {"position", "velocity"}
    positions = np.concatenate([s[2][:, 0] for s in steps]).astype(np.float64)
    assert stats["position"]["mean"] == pytest.approx(positions.mean())
    assert stats["position"]["min"] == pytest.approx(positions.min())
    assert stats["position"]["max"] == pytest.approx(positions.max())
    assert env.components.snapshot() == {}  # reset after a snapshot
    env.close()


def test_env_reward_when_no_reward_fn(task):
    env = _wrapped(task, None)
    for *_, rewards, _, _ in _run(env, 3):
        np.testing.assert_array_equal(rewards, -np.ones(N_ENVS))
    stats = env.components.snapshot()
    assert stats == {ENV_COMPONENT: {"mean": -1.0, "min": -1.0, "max": -1.0}}
    env.close()


def test_component_stats_known_data():
    stats = ComponentStats()
    stats.add({"a": np.array([1.0, 2.0]), "b": np.array([0.0, 0.0])})
    stats.add({"a": np.array([-3.0, 6.0])})
    snap = stats.snapshot()
    assert snap["a"] == {"mean": 1.5, "min": -3.0, "max": 6.0}
    assert snap["b"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    assert stats.snapshot() == {}


def test_episode_tracker_known_data():
    tracker = EpisodeTracker(2)
    tracker.add(np.array([1.0, 1.0]), np.array([0.5, 0.5]), np.array([False, True]))
    tracker.add(np.array([2.0, 3.0]), np.array([1.0, 1.0]), np.array([True, False]))
    snap = tracker.snapshot()
    assert snap == {"episodes": 2, "episode_length": 1.5, "env_return": 2.0, "reward_return": 1.0}


def test_true_next_obs_without_dones_is_unchanged():
    obs = np.zeros((2, 2))
    assert true_next_obs(obs, np.array([False, False]), [{}, {}]) is obs
    out = true_next_obs(obs, np.array([False, True]), [{}, {"terminal_observation": [1, 2]}])
    np.testing.assert_array_equal(out, [[0, 0], [1, 2]])
    assert obs.sum() == 0  # not modified in place


def test_reward_computer_rejects_contract_breach():
    from eureka_lab.core.errors import ContractError

    compute = RewardComputer(lambda o, a, n, i: (np.ones(3), {"a": np.ones(3)}))
    with pytest.raises(ContractError, match="shape"):
        compute(np.zeros((2, 2)), np.zeros(2), np.zeros((2, 2)), [{}, {}], np.zeros(2))
