"""Model answers for the scripted backend: ``good(scale)``, a valid MountainCar reward in
the shape real answers take (prose, then a fenced program), one per height scale."""

from __future__ import annotations

GOOD = """Here is a reward that rewards height and speed.

```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    height_scale = {scale}
    height = height_scale * np.sin(3 * next_obs[:, 0])
    speed = 10.0 * np.abs(next_obs[:, 1])
    return height + speed, {{"height": height, "speed": speed}}
```
"""


def good(scale: float) -> str:
    return GOOD.format(scale=scale)
