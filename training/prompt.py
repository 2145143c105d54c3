"""Moved to `phishlens.training.contract.prompt` (issue 17). This alias stays only until the server modules
being edited meanwhile (registry, services) import the contract path; do not import it."""

from phishlens.training.contract.prompt import *  # noqa: F403
