"""oneDNN process settings for the vLLM CPU backend, applied before the engine builds its first primitive.

oneDNN reads `ONEDNN_PRIMITIVE_CACHE_CAPACITY` once, when a process creates its first primitive (every
copy of oneDNN in the process: vLLM's kernels and torch's), so this runs before the engine is built.
"""

from __future__ import annotations

import os

from ..settings import Settings

CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def configure_onednn(settings: Settings) -> None:
    """Bound oneDNN's primitive cache to `settings.onednn_primitive_cache_capacity` entries."""
    os.environ[CACHE_ENV] = str(settings.onednn_primitive_cache_capacity)
