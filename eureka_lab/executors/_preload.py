"""Imported once by the executor's fork server, so that jobs start without paying for it.

Adam's first use imports ``torch._dynamo`` (about 3 s); importing it here pays that once.
"""

import gymnasium  # noqa: F401
import numpy  # noqa: F401
import stable_baselines3  # noqa: F401
import torch  # noqa: F401
import torch._dynamo  # noqa: F401

import eureka_lab.evaluation.evaluator  # noqa: F401
import eureka_lab.executors.job  # noqa: F401
import eureka_lab.reward.applied  # noqa: F401
import eureka_lab.reward.loader  # noqa: F401
import eureka_lab.trainers.sb3  # noqa: F401
