"""Moved to `phishlens.training.evaluation.report` (issue 17). This alias stays only until training/generalization.py
and training/evaluation_run.py move into the new layout (they were being edited meanwhile); do not import it."""

from phishlens.training.evaluation.report import *  # noqa: F403
from phishlens.training.evaluation.report import _score_unique  # noqa: F401
from phishlens.training.evaluation.matrix import CrossDomainMatrix  # noqa: F401
