"""Moved to `phishlens.training.evaluation.metrics` (issue 17). This alias stays only until training/generalization.py
and training/evaluation_run.py move into the new layout (they were being edited meanwhile); do not import it."""

from phishlens.training.evaluation.metrics import *  # noqa: F403
