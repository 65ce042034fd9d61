"""The selection seam (:mod:`.base`): by the task's score (:mod:`.fitness`), by a synthetic
person (:mod:`.oracle`), or by a person on a local page (:mod:`.human`) or at the terminal
(:mod:`.text`)."""
