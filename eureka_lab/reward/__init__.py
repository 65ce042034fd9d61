"""A reward's life: the contract (:mod:`.contract`), the code out of an answer
(:mod:`.answer`, :mod:`.parsing`), the static check against reviewed lists (:mod:`.check`,
:mod:`.allowed`), loading it into a restricted namespace (:mod:`.loader`, on tensors through
:mod:`.numpy_on_torch`), applying it to a batch (:mod:`.applied`), and validating it on real
transitions (:mod:`.validate`)."""
