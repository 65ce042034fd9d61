"""What the model is shown: the environment's source without its reward and its
observation, action and ``info`` described by name (:mod:`.context`), rendered through the
Jinja templates of ``prompts/`` (:mod:`.templates`) into a conversation
(:mod:`.conversation`)."""
