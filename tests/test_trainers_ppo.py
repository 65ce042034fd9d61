"""The lean PPO trainer ("ppo"): checkpoints, reported policies, determinism, the reward's
confinement order, bootstrapping, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from eureka_lab.evaluation.evaluator import evaluate
from eureka_lab.task.load import task_from_dict
from eureka_lab.trainers import Budget, make_trainer
from eureka_lab.trainers.ppo import OBS_MEAN, OBS_VAR, PPOTrainer
from eureka_lab.trainers.ppo_core import normalize

from support.tasks import tiny_task_dict

TINY = {"name": "ppo", "n_envs": 4, "n_steps": 16, "minibatch_size": 32, "epochs": 2}


def _task(env_id="MountainCar-v0", **trainer):
    return task_from_dict(tiny_task_dict(env_id=env_id, trainer={**TINY, **trainer}))


def _train(task, reward=None, timesteps=512, seed=0, checkpoints=3, load=None):
    trainer = make_trainer(task.trainer)
    seen = []
    out = trainer.train(
        task,
        load or (lambda: reward),
        Budget(timesteps=timesteps, seed=seed, checkpoints=checkpoints),
        lambda stats, arrays: seen.append((stats, arrays)),
    )
    return trainer, out, seen


def height_reward(obs, action, next_obs, info):
    height = np.sin(3 * next_obs[:, 0])
    push = 0.01 * (np.asarray(action) == 2)
    return height + push, {"height": height, "push": push}


def test_registered_and_settings_are_strict():
    trainer = make_trainer("ppo", {"n_envs": 8})
    assert isinstance(trainer, PPOTrainer) and trainer.n_envs == 8
    assert trainer.resources.threads == 1 and trainer.resources.device == "cpu"
    with pytest.raises(ValidationError):
        make_trainer("ppo", {"n_env": 8})


def test_mountain_car_reports_checkpoints_components_and_episodes():
    _, out, seen = _train(_task(), height_reward, timesteps=768, checkpoints=3)
    steps = [s.step for s, _ in seen]
    assert steps == [256, 512, 768] and out.steps == 768
    assert out.components == ["height", "push"]
    for stats, arrays in seen:
        assert set(stats.components) == {"height", "push"}
        assert -1.0 <= stats.components["height"].min <= stats.components["height"].max <= 1.0
        assert all(a.dtype == np.float32 for a in arrays.values())
        assert OBS_MEAN in arrays and OBS_VAR in arrays
    # 50-step episodes on 4 envs, 64 steps each between checkpoints: all see episodes end.
    assert all(s.episodes > 0 and s.episode_length == 50.0 for s, _ in seen)
    assert all(s.env_return == -50.0 for s, _ in seen)


def test_pendulum_actions_reach_the_reward_clipped_and_episodes_counted():
    actions = []

    def reward(obs, action, next_obs, info):
        actions.append(np.array(action))
        up = next_obs[:, 0].astype(np.float64)
        return up, {"upright": up}

    # A wide initial std makes unclipped samples leave [-2, 2] often.
    _, out, seen = _train(_task("Pendulum-v1", log_std_init=1.5), reward, checkpoints=2)
    acts = np.concatenate(actions)
    assert acts.shape[1:] == (1,) and np.all(np.abs(acts) <= 2.0) and np.any(np.abs(acts) == 2.0)
    assert len(seen) == 2 and out.components == ["upright"]
    assert sum(s.episodes for s, _ in seen) == (512 // 4 // 50) * 4
    assert {"actor/log_std", OBS_MEAN, OBS_VAR} <= set(seen[-1][1])


@pytest.mark.parametrize("env_id", ["MountainCar-v0", "Pendulum-v1"])
def test_policy_rebuilt_from_arrays_acts_as_the_trained_actor(env_id):
    task = _task(env_id)
    trainer, _, seen = _train(task)
    arrays = seen[-1][1]  # the last checkpoint is the final actor
    act = trainer.policy(task, arrays)
    ppo = trainer.last
    env = task.make_env()
    raw = np.stack([env.reset(seed=i)[0] for i in range(7)])
    env.close()
    mean, var = ppo.obs_norm.export()
    with torch.no_grad():
        expected = ppo.actor.deterministic(normalize(torch.as_tensor(raw), mean, var)).numpy()
    got = act(raw)
    assert got.shape == (7,) if env_id == "MountainCar-v0" else (7, 1)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)
    # and the evaluator can use it
    (evaluation,) = evaluate(task, trainer, {seen[-1][0].step: arrays}, episodes=2).checkpoints
    assert np.isfinite(evaluation.fitness)


def test_same_seed_same_reports():
    task = _task("Pendulum-v1", normalize_reward=True)
    runs = [_train(task, seed=5)[2] for _ in range(2)]
    other = _train(task, seed=6)[2]
    for (s1, a1), (s2, a2) in zip(*runs, strict=True):
        assert s1.model_dump(exclude={"seconds"}) == s2.model_dump(exclude={"seconds"})
        assert a1.keys() == a2.keys()
        for k in a1:
            np.testing.assert_array_equal(a1[k], a2[k])
    assert any(
        not np.array_equal(a1[k], a2[k])
        for (_, a1), (_, a2) in zip(runs[0], other, strict=True)
        for k in a1
    )


def test_load_reward_called_once_before_any_reward_call():
    events = []

    def reward(obs, action, next_obs, info):
        events.append("reward")
        return height_reward(obs, action, next_obs, info)

    def load():
        events.append("load")
        return reward

    _train(_task(), load=load, timesteps=128, checkpoints=1)
    assert events[0] == "load" and events.count("load") == 1
    assert events.count("reward") == 128 // 4  # once per batched step


def test_truncation_bootstraps_with_the_value_of_the_reached_state():
    task = _task("Pendulum-v1", normalize_obs=False, normalize_reward=False, gamma=0.9)
    trainer, _, _ = _train(task, timesteps=64, checkpoints=1)
    ppo = trainer.last
    reached = torch.randn(4, 3)
    r = torch.ones(4, dtype=torch.float64)
    term = torch.tensor([False, True, False, True])
    trunc = torch.tensor([False, False, True, True])
    out = ppo.shape_reward(r, term, trunc, reached)
    v = ppo.value(reached)
    expected = torch.tensor([1.0, 1.0, 1.0 + 0.9 * float(v[2]), 1.0])
    torch.testing.assert_close(out, expected)


def test_pendulum_learns_well_beyond_random():
    """~60k steps, a few seconds on one core: a random policy scores about -1200."""
    task = _task(
        "Pendulum-v1",
        n_envs=16,
        n_steps=64,
        minibatch_size=256,
        epochs=10,
        learning_rate=1e-3,
        gamma=0.9,
    )
    task = task_from_dict({**task.model_dump(), "max_episode_steps": None})
    trainer, _, seen = _train(task, timesteps=60_000, checkpoints=4)
    (first, last) = evaluate(
        task, trainer, {seen[0][0].step: seen[0][1], seen[-1][0].step: seen[-1][1]}, episodes=5
    ).checkpoints
    assert seen[-1][0].env_return > -600
    assert last.fitness > -450 and last.fitness > first.fitness + 300


def test_training_continues_from_its_saved_state():
    """A round of halving: train to 512 keeping the state, continue to 1024 from it. The
    state is plain float arrays, and the continued training starts from exactly it."""
    task = _task()
    seen = []
    first = make_trainer(task.trainer)
    first.train(
        task,
        lambda: height_reward,
        Budget(512, 0, 4, keep_state=True, every=256),
        lambda stats, arrays, state=None: seen.append((stats.step, state)),
    )
    assert [s for s, _ in seen] == [256, 512]
    assert seen[0][1] is None  # only the last report carries the state
    state = seen[1][1]
    assert state and all(v.dtype.kind == "f" and np.all(np.isfinite(v)) for v in state.values())
    saved = {k: v.detach().clone() for k, v in first.last.state().items()}

    second = make_trainer(task.trainer)
    resumed = []
    # Loading the state into a fresh PPO gives back the same state, Adam's step counts included.
    steps = []

    def load():  # called once the trainer is built and its state loaded
        steps.append({k: v.clone() for k, v in second.last.state().items()})
        return height_reward

    out = second.train(
        task,
        load,
        Budget(1024, 0, 4, start=512, resume=state, every=256),
        lambda stats, arrays: resumed.append(stats.step),
    )
    assert resumed == [768, 1024] and out.steps == 1024
    loaded = steps[0]
    assert loaded.keys() == saved.keys()
    for k in saved:
        torch.testing.assert_close(loaded[k].to(saved[k].dtype), saved[k], msg=k)
    assert any("adam/" in k and k.endswith("/step") and float(saved[k][0]) > 0 for k in saved)


def test_env_count_is_chosen_from_the_budget():
    trainer = make_trainer("ppo", {"n_steps": 32})
    assert trainer.envs_for(10_000) == 8  # few steps: more updates matter more
    assert trainer.envs_for(200_000) == 64
    assert trainer.envs_for(10_000_000) == 128
    assert make_trainer("ppo", {"n_envs": 24}).envs_for(10_000_000) == 24


def test_gaussian_log_prob_and_entropy_equal_torch_distributions():
    from eureka_lab.trainers.ppo_core import ActionSpace, Actor, PPOConfig

    space = ActionSpace(discrete=False, shape=(3,), low=-torch.ones(3), high=torch.ones(3))
    actor = Actor(5, space, PPOConfig())
    with torch.no_grad():
        actor.log_std.copy_(torch.tensor([0.1, -0.3, 0.5]))
    obs, action = torch.randn(7, 5), torch.randn(7, 3)
    logp, entropy = actor.log_prob_entropy(obs, action)
    reference = actor.dist(obs)
    torch.testing.assert_close(logp, reference.log_prob(action).sum(-1))
    torch.testing.assert_close(entropy, reference.entropy().sum(-1))


def test_a_group_trains_each_reward_as_it_would_alone_and_a_failing_one_fails_alone():
    """Three rewards in one process, each on its own worlds of one batch: the first trains
    exactly as it does alone (same worlds, same seed, its own PPO), the one that raises
    stops with its exception, and the third learns its own policy."""
    task = _task("Pendulum-v1")
    trainer = make_trainer(task.trainer)
    budget = Budget(timesteps=512, seed=3, checkpoints=2)
    calls = []

    def upright(obs, action, next_obs, info):
        up = next_obs[:, 0].astype(np.float64)
        return up, {"upright": up}

    def tired(obs, action, next_obs, info):
        calls.append(len(obs))
        if len(calls) > 80:
            raise RuntimeError("tired after 80 calls")
        return upright(obs, action, next_obs, info)

    def still(obs, action, next_obs, info):
        speed = -np.abs(next_obs[:, 2]).astype(np.float64)
        return speed, {"still": speed}

    alone = []
    trainer.train(task, lambda: upright, budget, lambda s, a: alone.append((s, a)))
    seen = [[], [], []]
    outcomes = trainer.train_group(
        task,
        [lambda: upright, lambda: tired, lambda: still],
        budget,
        [lambda s, a, i=i: seen[i].append((s, a)) for i in range(3)],
    )
    assert outcomes[0].steps == outcomes[2].steps == 512
    assert isinstance(outcomes[1], RuntimeError) and calls == [4] * 81  # its own 4 worlds
    assert outcomes[2].components == ["still"]
    assert [s.step for s, _ in seen[1]] == [256]  # it reported until it failed
    for (s1, a1), (s2, a2) in zip(alone, seen[0], strict=True):
        assert s1.model_dump(exclude={"seconds"}) == s2.model_dump(exclude={"seconds"})
        for k in a1:
            np.testing.assert_array_equal(a1[k], a2[k])
    assert any(not np.array_equal(seen[0][-1][1][k], seen[2][-1][1][k]) for k in seen[0][-1][1])


def test_only_a_fresh_start_trains_a_group():
    task = _task()
    trainer = make_trainer(task.trainer)
    resume = {"x": np.zeros(1)}
    with pytest.raises(ValueError, match="only one reward"):
        trainer.train_group(
            task, [lambda: None] * 2, Budget(256, 0, 1, start=128, resume=resume), [print] * 2
        )
