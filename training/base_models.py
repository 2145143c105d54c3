"""Moved to `phishlens.training.contract.base_models` (issue 17). This alias stays only until training/generalization.py
and training/evaluation_run.py move into the new layout (they were being edited meanwhile); do not import it."""

from phishlens.training.contract.base_models import *  # noqa: F403
