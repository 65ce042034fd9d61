"""The evaluator: checkpoint policies rolled out in a process that never loads reward code
(:mod:`.evaluator`), what each policy did (:mod:`.behaviour`), and rollout videos
(:mod:`.video`). The fitness that selects candidates comes only from here."""
