"""What the model sees about an environment: its source without the reward
(:mod:`eureka_lab.prompt.env_source`, :mod:`eureka_lab.prompt.reward_removal`), the layout of the
observation and action spaces, and the ``info`` keys reward code receives
(:mod:`eureka_lab.prompt.env_layout`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from eureka_lab.core.errors import TaskError
from eureka_lab.prompt import env_layout as layout
from eureka_lab.prompt.env_source import env_source
from eureka_lab.prompt.reward_removal import is_hidden, strip_reward
from eureka_lab.task.model import Task

__all__ = ["EnvContext", "build_context", "context_for_env", "env_source", "strip_reward"]


@dataclass(frozen=True)
class EnvContext:
    """An environment as described to the model."""

    env_id: str
    source: str
    """Python source of the environment, reward computation removed."""
    observation: str
    """Observation space, then one line per flat observation entry."""
    action: str
    """Action space: shape, bounds or n, and meaning where known."""
    info_keys: tuple[str, ...]
    """The ``info`` keys reward code receives."""
    constructed_with: str = ""
    """How the env is made when it differs from the defaults (kwargs, time limit)."""

    def to_prompt(self, prompts: Any = None) -> str:
        """Compact markdown for the prompt (``prompts/context.j2``)."""
        from eureka_lab.prompt.templates import PromptBook

        return (prompts or PromptBook()).render(
            "context",
            env_id=self.env_id,
            constructed_with=self.constructed_with,
            source=self.source.rstrip(),
            observation=self.observation.rstrip(),
            action=self.action.rstrip(),
            info_keys=", ".join(f"`{k}`" for k in self.info_keys) or "(none)",
        )


def build_context(task: Task) -> EnvContext:
    """Context of a task's environment."""
    env = task.make_env()
    try:
        context = context_for_env(env, task.observation_names, env_id=task.env_id)
    finally:
        env.close()
    # Reward weights passed as kwargs stay hidden like the rest of the reward.
    settings = [f"{k}={v!r}" for k, v in task.env_kwargs.items() if not is_hidden(k)]
    if task.max_episode_steps is not None:
        settings.append(f"max_episode_steps={task.max_episode_steps}")
    if not settings:
        return context
    return replace(context, constructed_with=f"`{', '.join(settings)}`")


def context_for_env(
    env: Any,
    observation_names: tuple[str, ...] | list[str] | None = None,
    env_id: str | None = None,
) -> EnvContext:
    """Context of any Gymnasium env (registered or a user's class); resets and steps it."""
    import gymnasium as gym

    cls = type(env.unwrapped)
    if env_id is None:
        spec = getattr(env, "spec", None)
        env_id = spec.id if spec is not None else f"{cls.__module__}:{cls.__name__}"
    n_obs = gym.spaces.flatdim(env.observation_space)
    samples, infos = layout.rollout(env)
    if observation_names is not None:
        names: list[str | None] = list(observation_names)
        if len(names) != n_obs:
            raise TaskError(
                f"{env_id}: {len(names)} observation_names given but the flat observation has "
                f"{n_obs} entries; give exactly {n_obs} names or none."
            )
    else:
        names = layout.mujoco_names(env, samples) or [None] * n_obs
    return EnvContext(
        env_id=env_id,
        source=env_source(cls),
        observation=layout.describe_observation(env.observation_space, names, cls),
        action=layout.describe_action(env, cls),
        info_keys=layout.info_keys(infos),
    )
