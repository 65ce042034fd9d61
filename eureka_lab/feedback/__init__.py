"""The feedback seam: what the next sampling prompt is built from (:mod:`.base`): Eureka's
reward reflection (:mod:`.reflection`) or ICPL's preferences (:mod:`.preference`)."""
