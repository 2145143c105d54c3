"""Service layer: the logic behind the routes, testable without HTTP (STYLE.md H2)."""

from .classify import Classification, ClassifyOutcome, ClassifyService, GoldenReport

__all__ = ["Classification", "ClassifyOutcome", "ClassifyService", "GoldenReport"]
