"""Moved to `phishlens.training.contract.base_models` (issue 17). This alias stays only until the server modules
being edited meanwhile (registry, services) import the contract path; do not import it."""

from phishlens.training.contract.base_models import *  # noqa: F403
