"""Prompt templates (Jinja2, in ``prompts/``) rendered into conversations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from eureka_lab.core.files import data_dir
from eureka_lab.prompt.conversation import Message

TEMPLATES = ("system", "context", "task", "feedback", "preference", "repair")


class PromptBook:
    """The templates of one folder; a user folder may override any of them."""

    def __init__(self, folder: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(data_dir("prompts")))]
        if folder is not None:
            loaders.insert(0, jinja2.FileSystemLoader(str(folder)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )

    def render(self, name: str, **values: Any) -> str:
        return self.env.get_template(f"{name}.j2").render(**values).strip() + "\n"

    def opening(
        self,
        *,
        env_id: str,
        context: str,
        description: str,
        n_envs: int,
        facts: dict[str, Any] | None = None,
    ) -> list[Message]:
        """System and task messages: the start of every conversation. ``facts``: what a
        reward engineer needs to know about training and scoring (see task.j2)."""
        return [
            Message("system", self.render("system", n_envs=n_envs)),
            Message(
                "user",
                self.render(
                    "task",
                    env_id=env_id,
                    context=context,
                    description=description,
                    facts=facts or {},
                ),
            ),
        ]
