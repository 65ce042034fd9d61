"""The device-side training statistics give the numpy classes' snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eureka_lab.reward.applied import ComponentStats, EpisodeTracker
from eureka_lab.trainers.device_stats import DeviceComponentStats, DeviceEpisodeTracker


def test_component_and_episode_snapshots_equal_the_numpy_ones():
    rng = np.random.default_rng(0)
    n = 16
    host, device = (
        (ComponentStats(), EpisodeTracker(n)),
        (
            DeviceComponentStats(),
            DeviceEpisodeTracker(n, torch.device("cpu")),
        ),
    )
    snapshots = []
    for _checkpoint in range(3):
        for _ in range(40):
            comps = {"a": rng.normal(size=n).astype(np.float32), "b": rng.uniform(size=n)}
            env_r, r = rng.normal(size=n), rng.normal(size=n).astype(np.float32)
            done = rng.uniform(size=n) < 0.1
            host[0].add(comps)
            host[1].add(env_r, r, done)
            device[0].add({k: torch.as_tensor(v) for k, v in comps.items()})
            device[1].add(torch.as_tensor(env_r), torch.as_tensor(r), torch.as_tensor(done))
        snapshots.append(
            ((host[0].snapshot(), host[1].snapshot()), (device[0].snapshot(), device[1].snapshot()))
        )
    for (h_comps, h_eps), (d_comps, d_eps) in snapshots:
        assert h_comps.keys() == d_comps.keys() == {"a", "b"}
        for name in h_comps:
            assert d_comps[name] == pytest.approx(h_comps[name], rel=1e-6, abs=1e-6)
        assert h_eps["episodes"] == d_eps["episodes"] > 0
        for key in ("episode_length", "env_return", "reward_return"):
            assert d_eps[key] == pytest.approx(h_eps[key], rel=1e-6, abs=1e-6)
    empty = DeviceEpisodeTracker(2, torch.device("cpu")).snapshot()
    assert empty == EpisodeTracker(2).snapshot()
    assert DeviceComponentStats().snapshot() == {}
