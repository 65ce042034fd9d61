"""The executor seam: jobs (validate, train, evaluate) run as data in and data out
(:mod:`.base`, :mod:`.job`), through bounded frames on a pipe (:mod:`.channel`), in sandboxed
children on this machine (:mod:`.local`, :mod:`.child`) or as Ray tasks (:mod:`.ray`)."""
