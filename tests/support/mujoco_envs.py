"""The eleven Gymnasium MuJoCo v5 envs with a batched form, and the keyword arguments the
step-by-step equality tests change (tests/test_batched_mujoco.py in C, on Warp in
tests/test_trainers_warp.py)."""

from __future__ import annotations

from eureka_lab.task.model import Task

ELEVEN = [
    "Ant-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Humanoid-v5",
    "HumanoidStandup-v5",
    "InvertedDoublePendulum-v5",
    "InvertedPendulum-v5",
    "Pusher-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Walker2d-v5",
]

UNHEALTHY_ENDS = {"Ant-v5", "Hopper-v5", "Humanoid-v5", "Walker2d-v5"}
"""The envs with ``terminate_when_unhealthy``."""
FALLING = UNHEALTHY_ENDS - {"Ant-v5"} | {"InvertedDoublePendulum-v5", "InvertedPendulum-v5"}
"""The envs random torques topple within a few dozen steps (the Ant stands on)."""

CONTACT_FORCES = {"Ant-v5": 78, "Humanoid-v5": 78, "HumanoidStandup-v5": 78}
"""Envs whose observation ends with the bodies' contact forces (cfrc_ext), and how many."""

KWARGS = {
    "Ant-v5": {
        "include_cfrc_ext_in_observation": False,
        "exclude_current_positions_from_observation": False,
        "main_body": "aux_1",
        "healthy_z_range": (0.3, 0.9),
    },
    "HalfCheetah-v5": {"ctrl_cost_weight": 0.5, "reset_noise_scale": 0.3, "frame_skip": 3},
    "Hopper-v5": {"healthy_angle_range": (-0.1, 0.1), "healthy_state_range": (-5, 5)},
    "Humanoid-v5": {
        "include_cinert_in_observation": False,
        "include_qfrc_actuator_in_observation": False,
        "contact_cost_weight": 1e-3,
        "contact_cost_range": (-1, 0.5),
    },
    "HumanoidStandup-v5": {
        "include_cvel_in_observation": False,
        "impact_cost_weight": 1e-4,
        "impact_cost_range": (-1.0, 0.1),
    },
    "InvertedDoublePendulum-v5": {"healthy_reward": 5, "reset_noise_scale": 0.3},
    "InvertedPendulum-v5": {"reset_noise_scale": 0.1, "frame_skip": 4},
    "Pusher-v5": {"reward_near_weight": 1.0, "reward_dist_weight": 2.0},
    "Reacher-v5": {"reward_dist_weight": 2.0, "reward_control_weight": 0.5},
    "Swimmer-v5": {"exclude_current_positions_from_observation": False, "forward_reward_weight": 2},
    "Walker2d-v5": {"healthy_z_range": (0.9, 2.0), "exclude_current_positions_from_observation": 0},
}
"""A change per env of what it observes, rewards or ends on."""

MORE_KWARGS = {
    "Ant-v5": {"contact_force_range": (-0.5, 0.5), "contact_cost_weight": 0.01},
    "HalfCheetah-v5": {"exclude_current_positions_from_observation": False},
    "Hopper-v5": {"exclude_current_positions_from_observation": False, "frame_skip": 2},
    "Humanoid-v5": {
        "include_cvel_in_observation": False,
        "include_cfrc_ext_in_observation": False,
        "exclude_current_positions_from_observation": False,
        "healthy_z_range": (1.1, 1.9),
        "forward_reward_weight": 3.0,
    },
    "HumanoidStandup-v5": {
        "include_cinert_in_observation": False,
        "include_qfrc_actuator_in_observation": False,
        "include_cfrc_ext_in_observation": False,
        "exclude_current_positions_from_observation": False,
        "reset_noise_scale": 0.1,
        "ctrl_cost_weight": 0.3,
    },
    "InvertedDoublePendulum-v5": {"frame_skip": 2},
    "InvertedPendulum-v5": {"reset_noise_scale": 0.001},
    "Pusher-v5": {"reward_control_weight": 0.3, "frame_skip": 2},
    "Reacher-v5": {"frame_skip": 5},
    "Swimmer-v5": {"ctrl_cost_weight": 0.1, "reset_noise_scale": 0.5},
    "Walker2d-v5": {"healthy_angle_range": (-0.5, 0.5), "terminate_when_unhealthy": False},
}
"""Every other keyword argument that changes a result, for the slow run."""


def env_task(env_id: str, kwargs: dict | None = None, max_steps: int | None = None) -> Task:
    return Task(
        name="t",
        env_id=env_id,
        env_kwargs=kwargs or {},
        max_episode_steps=max_steps,
        description="-",
        timesteps=1,
    )
