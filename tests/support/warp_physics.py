"""The Ant with friction MuJoCo Warp computes as MuJoCo C does, and its definition.

For a contact between a capsule and a plane (the Ant's feet on the floor), MuJoCo Warp
takes other tangent directions than MuJoCo C; under the pyramidal friction cone of
Gymnasium's model, whose edges follow them, the friction differs, and one step from the
same state parts by velocities up to about 1 when a foot lands (``tests/test_warp.py``
measures it). With the elliptic cone, which has no edges, the two agree to float32
precision: this variant checks what the Ant's definition computes on Warp.
"""

from __future__ import annotations

from typing import Any

import mujoco
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from eureka_lab.batched.mujoco_envs import Ant


class EllipticAntEnv(AntEnv):
    def _initialize_simulation(self) -> tuple[Any, Any]:
        model, data = super()._initialize_simulation()
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        return model, data


class EllipticAnt(Ant):
    env_id = "support.warp_physics:EllipticAntEnv"
    env_class = EllipticAntEnv
