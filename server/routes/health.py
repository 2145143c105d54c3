"""Liveness, readiness (engine up + golden checks) and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..deps import MetricsKey, RuntimeDep
from ..errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(rt: RuntimeDep) -> dict[str, object]:
    if not await rt.backend.healthy():
        raise NotReady("inference engine is not healthy")
    if len(rt.registry) == 0:
        raise NotReady("no adapter is loaded")
    report = await rt.classify.golden_check()
    if not report.ok:
        raise NotReady("golden checks failed: " + "; ".join(report.failures))
    return {"status": "ready", "backend": rt.backend.name, "adapters": [e.name for e in rt.registry.list()]}


@router.get("/metrics", include_in_schema=False, dependencies=[MetricsKey])
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)
