"""Live drift monitoring (DESIGN.md §6): `monitor` (the worker fed by served classifications), `window` (one
adapter's live window and its persistence), `statistics` (a window against its reference), `report` (the
typed state it produces)."""

from .monitor import DriftMonitor
from .report import AdapterDrift, FeatureDrift, Prevalence
from .statistics import evaluate
from .window import LiveWindow

__all__ = ["AdapterDrift", "DriftMonitor", "FeatureDrift", "LiveWindow", "Prevalence", "evaluate"]
