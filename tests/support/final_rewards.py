"""Rewards for the closing comparison's tests, scored by SeedTableTrainer: the final seeds
are 1000, 2000, 3000, and each reward writes down what it scores on each. Standalone
source (no annotations, numpy only): the reward check reads them as it reads a task's."""

import numpy as np


def human_steady(obs, action, next_obs, info):
    """Scores 1.0, 1.1, 0.9."""
    s = np.clip(obs[:, 0] // 1000 - 1, 0, 2).astype(np.int64)
    r = np.array([1.0, 1.1, 0.9])[s]
    return r, {"r": r}


def sparse_close(obs, action, next_obs, info):
    """Within noise of human_steady."""
    s = np.clip(obs[:, 0] // 1000 - 1, 0, 2).astype(np.int64)
    r = np.array([1.05, 0.9, 1.0])[s]
    return r, {"r": r}


def sparse_low(obs, action, next_obs, info):
    """Far below human_steady."""
    s = np.clip(obs[:, 0] // 1000 - 1, 0, 2).astype(np.int64)
    r = np.array([0.0, 0.1, 0.05])[s]
    return r, {"r": r}
