"""App factory and lifespan (STYLE.md H3): the engine and registry open at start-up and close on shutdown."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI

from phishlens import __version__

from .backends.base import Backend
from .deps import Runtime
from .errors import install_error_handlers
from .limits import BodyLimitMiddleware, JsonBodyMiddleware
from .metrics import Metrics, MetricsMiddleware
from .registry import AdapterRegistry
from .routes import adapters, classify, health, kserve
from .services.classify import ClassifyService
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the app; `backend` (e.g. a fake in tests) replaces the one `settings.backend` names."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if backend is not None:
            engine = backend
        else:
            from .backends.factory import make_backend

            engine = make_backend(settings)
        await engine.start()
        registry = AdapterRegistry(engine, settings, metrics)
        try:
            await registry.open()
            service = ClassifyService(engine, registry, settings, metrics)
            app.state.runtime = Runtime(settings, engine, registry, service, metrics)
            logger.info("serving %d adapter(s) on %s backend", len(registry), engine.name)
            yield
        finally:
            app.state.runtime = None
            try:
                await registry.close()
            finally:
                await engine.close()

    app = FastAPI(title="phishlens", version=__version__, lifespan=lifespan,
                  description="LoRA phishing classifiers: classify, manage adapters, KServe V1.")
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runtime = None
    install_error_handlers(app)
    for module in (classify, adapters, kserve, health):
        app.include_router(module.router)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees the 413s too
    return app
