"""App factory and lifespan (STYLE.md H3): the engine and registry open at start-up and close on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from phishlens import __version__

from .backends.base import Backend
from .backends.hf_replica import HFReplica
from .deps import Runtime
from .errors import ERROR_RESPONSES, install_error_handlers
from .limits import BodyLimitMiddleware, JsonBodyMiddleware
from .memory import trim_periodically
from .metrics import Metrics, MetricsMiddleware
from .middleware import AuditMiddleware, CatchAllMiddleware, TextGuardMiddleware
from .registry import AdapterRegistry
from .routes import adapters, classify, health, kserve
from .routes import drift as drift_routes
from .routes import explain as explain_routes
from .routes import feedback as feedback_routes
from .routes import probe as probe_routes
from .routes import ui as ui_routes
from .services.classify import ClassifyService
from .services.drift import DriftMonitor
from .services.drift_metrics import DriftMetrics
from .services.explain import ExplainService
from .services.feedback import FeedbackService
from .services.ood import OodService
from .services.probe import ProbeService
from .settings import Settings, get_settings
from .watchdog import ENGINE_DEAD_EXIT, watch_engine

logger = logging.getLogger(__name__)


def _engine_dead(app: FastAPI) -> None:
    app.state.exit_code = ENGINE_DEAD_EXIT
    if app.state.request_exit is not None:
        app.state.request_exit()


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    """Build the app; `backend` (e.g. a fake in tests) replaces the one `settings.backend` names."""
    settings = settings or get_settings()
    metrics = Metrics()
    drift_metrics = DriftMetrics(metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if backend is not None:
            engine = backend
        else:
            from .backends.factory import make_backend

            engine = make_backend(settings)
        await engine.start()
        registry = AdapterRegistry(engine, settings, metrics)
        # one transformers copy of the base (loads on first use) for probes and prefix-tree explanations
        replica = HFReplica(settings)
        try:
            await registry.open()
            ood = OodService(settings) if settings.ood_enabled else None
            service = ClassifyService(engine, registry, settings, metrics, ood)
            unrouted = sorted(set(settings.routes.values()) - {e.name for e in registry.list()})
            if unrouted:  # may be loaded later (POST /v1/adapters); until then those texts get 404
                logger.warning("PHISHLENS_ROUTES names adapters that are not loaded: %s", unrouted)
            feedback_service = FeedbackService(settings, registry, metrics)
            feedback_service.open()  # journaled labels back into the live windows and counters
            service.observers.append(feedback_service)
            app.state.runtime = Runtime(settings, engine, registry, service, metrics)
            # explanations never go through ClassifyService: never counted as classifications
            app.state.runtime.explain = ExplainService(engine, registry, settings, metrics, replica)
            if settings.explain_warmup:
                app.state.runtime.explain.start_warm_up()
            app.state.runtime.feedback = feedback_service
            app.state.runtime.probe = ProbeService(registry, settings, replica)
            if settings.drift_enabled:
                monitor = DriftMonitor(settings, registry, drift_metrics)
                monitor.start()
                metrics.forget_hooks.append(monitor.forget)
                service.observers.append(monitor)
                app.state.runtime.drift = monitor
            logger.info("serving %d adapter(s) on %s backend", len(registry), engine.name)
            watchdog = asyncio.create_task(
                watch_engine(
                    engine, settings.engine_check_s, settings.engine_dead_after_s, lambda: _engine_dead(app)
                )
            )
            trimmer = (
                asyncio.create_task(
                    trim_periodically(settings.malloc_trim_interval_s, metrics.malloc_trim_released.inc)
                )
                if settings.malloc_trim_interval_s > 0
                else None
            )
            try:
                yield
            finally:
                watchdog.cancel()
                if trimmer is not None:
                    trimmer.cancel()
        finally:
            drift = app.state.runtime.drift if app.state.runtime is not None else None
            feedback = app.state.runtime.feedback if app.state.runtime is not None else None
            app.state.runtime = None
            if feedback is not None:
                feedback.close()  # compacts the journal and releases the folder's lock
            if drift is not None:  # persist the windows before unloading (unload drops them)
                await asyncio.to_thread(drift.close)
                metrics.forget_hooks.remove(drift.forget)
            try:
                await registry.close()
            finally:
                replica.close()  # frees the HF copy's weights
                await engine.close()

    app = FastAPI(
        title="phishlens",
        version=__version__,
        lifespan=lifespan,
        description="LoRA phishing classifiers: classify, manage adapters, KServe V1.",
    )
    app.state.settings = settings
    if not (settings.api_keys or settings.explain_keys):
        logger.warning(
            "no API keys configured (PHISHLENS_API_KEYS, PHISHLENS_EXPLAIN_KEYS): the classify, "
            "explain and probe routes are open to anyone who can reach this port"
        )
    app.state.metrics = metrics
    app.state.runtime = None
    app.state.exit_code = 0  # set by the engine watchdog; `phishlens serve` exits with it
    app.state.request_exit = None  # set by whoever runs the server: asks it to stop gracefully
    install_error_handlers(app)
    for module in (classify, adapters, kserve, health):
        app.include_router(module.router, responses=ERROR_RESPONSES)  # the error contract, in the OpenAPI
    app.include_router(feedback_routes.router, responses=ERROR_RESPONSES)
    app.include_router(drift_routes.router, responses=ERROR_RESPONSES)
    app.include_router(explain_routes.router, responses=ERROR_RESPONSES)
    app.include_router(probe_routes.router, responses=ERROR_RESPONSES)
    if settings.ui_enabled:  # the analyst console: static files over the public API
        app.include_router(ui_routes.make_router(settings))
    app.add_middleware(TextGuardMiddleware)  # inside the body cap: sees the buffered, capped body
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        drain_bytes=settings.max_drain_bytes,
        drain_s=settings.drain_timeout_s,
    )
    app.add_middleware(AuditMiddleware, audit_log=settings.audit_log)  # admin requests, granted or refused
    app.add_middleware(CatchAllMiddleware)  # inside metrics: the 500s it answers are counted
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees the 413s too
    return app
