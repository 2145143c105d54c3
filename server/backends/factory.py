"""Explicit backend factory (STYLE.md H1/H7): settings choose; engines are imported lazily by module path."""

from __future__ import annotations

import importlib
import importlib.util
import logging

from ..settings import Settings
from .base import Backend

logger = logging.getLogger(__name__)

BACKENDS = {
    "vllm": "phishlens.server.backends.vllm_backend:VLLMBackend",
    "hf": "phishlens.server.backends.hf_backend:HFBackend",
}


def resolve_kind(kind: str) -> str:
    if kind != "auto":
        return kind
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


def make_backend(settings: Settings) -> Backend:
    """Build (not start) the backend named by `settings.backend`; `auto` prefers vLLM when installed."""
    kind = resolve_kind(settings.backend)
    if kind not in BACKENDS:
        raise ValueError(f"unknown backend {settings.backend!r}; choose auto, vllm or hf")
    module, cls = BACKENDS[kind].split(":")
    backend_cls = getattr(importlib.import_module(module), cls)
    logger.info("backend %s (%s) for base %s", kind, BACKENDS[kind], settings.base_model)
    return backend_cls(settings)
