"""Hopper-v5 doing backflips: jump and rotate backwards, as many full turns as possible.

Observation (11): [0] torso height z, [1] torso pitch angle in radians, not wrapped (it
keeps counting past +-pi, so it measures total rotation since the start; positive tips the
top of the torso forward towards +x, negative tips it backward towards -x), [2] thigh,
[3] leg, [4] foot joint angles, [5] forward velocity, [6] vertical velocity, [7] pitch
angular velocity (negative when rotating backward), [8:11] joint angular velocities.
Velocities are clipped to [-10, 10]. Action (3): joint torques in [-1, 1]. The episode
does not end when the hopper falls; it always lasts 1000 steps.
Info: x_position, z_distance_from_origin, x_velocity.
"""

import math

import numpy as np

FULL_TURN = 2.0 * math.pi


def fitness(episode):
    """Largest backward rotation of the torso reached during the episode, in full turns."""
    pitch = episode.qpos[:, 2]
    backward = pitch[0] - pitch
    return float(max(0.0, np.max(backward)) / FULL_TURN)


def sparse_reward(obs, action, next_obs, info):
    flipped = (-next_obs[:, 1] >= FULL_TURN).astype(np.float64)
    return flipped, {"flipped": flipped}


def human_reward(obs, action, next_obs, info):
    """Hand-written: backward angular velocity, height, and a small torque cost."""
    backward_spin = -next_obs[:, 7]
    height = next_obs[:, 0]
    torque_sq = np.sum(action**2, axis=1)
    components = {
        "backward_spin": 1.0 * backward_spin,
        "height": 1.0 * height,
        "torque": -0.001 * torque_sq,
    }
    total = sum(components.values())
    return total, components


def rotation_progress_reward(obs, action, next_obs, info):
    """Reward each step's backward rotation and the total rotation so far."""
    step_rotation = obs[:, 1] - next_obs[:, 1]
    total_rotation = np.clip(-next_obs[:, 1], 0.0, None)
    components = {
        "step_rotation": 50.0 * step_rotation,
        "total_rotation": 0.1 * total_rotation,
    }
    total = sum(components.values())
    return total, components


def jump_and_spin_reward(obs, action, next_obs, info):
    """Jump high, rotate backward, and push off the ground upward."""
    height = next_obs[:, 0]
    up_speed = np.clip(next_obs[:, 6], 0.0, None)
    backward_spin = np.clip(-next_obs[:, 7], 0.0, None)
    components = {
        "height": 2.0 * np.clip(height - 1.0, 0.0, None),
        "up_speed": 0.5 * up_speed,
        "backward_spin": 0.5 * backward_spin,
        "torque": -0.01 * np.sum(action**2, axis=1),
    }
    total = sum(components.values())
    return total, components
