"""Moved to `phishlens.training.commands.train` and `.model.loading` (issue 17). This alias stays only until
training/evaluation_run.py moves into the new layout; do not import it."""

from phishlens.training.model.loading import CachedScorer, load_model  # noqa: F401
