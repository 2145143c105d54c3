"""Live drift monitoring (DESIGN.md §6): `monitor` (the worker fed by served classifications), `window` (one
adapter's live window and its persistence), `statistics` (a window against its reference)."""

from .monitor import DriftMonitor
from .statistics import AdapterDrift, FeatureDrift, Prevalence, evaluate
from .window import LiveWindow

__all__ = ["AdapterDrift", "DriftMonitor", "FeatureDrift", "LiveWindow", "Prevalence", "evaluate"]
