"""The selection seam (:mod:`.base`): by the task's score (:mod:`.fitness`), by a synthetic
person (:mod:`.oracle`), or by a person on a local page (:mod:`.human` serves :mod:`.page`) or at the terminal
(:mod:`.text`)."""
