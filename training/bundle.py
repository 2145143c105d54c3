"""Moved to `phishlens.training.contract.bundle` (issue 17). This alias stays only until training/generalization.py
and training/evaluation_run.py move into the new layout (they were being edited meanwhile); do not import it."""

from phishlens.training.contract.bundle import *  # noqa: F403
