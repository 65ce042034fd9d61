"""The reward-synthesis loop (:mod:`.loop`) and its collaborators: the journal they write
through, the model requests, the candidates, the trainings and what jobs send back, the
selection, the race on fresh seeds and the closing comparison."""
