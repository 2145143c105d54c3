"""GET /v1/drift (DESIGN.md §6): the drift monitor's current state per loaded adapter."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from phishlens.clients.protocol import DriftResponse

from ..deps import ApiKey, RuntimeDep
from ..errors import NotReady
from ..wire import drift_info

router = APIRouter(tags=["drift"], dependencies=[ApiKey])


@router.get("/v1/drift", response_model=DriftResponse)
async def drift(rt: RuntimeDep) -> DriftResponse:
    """Per adapter: window, statistics with thresholds, alert, most shifted features, typical words."""
    if rt.drift is None:
        raise NotReady("the drift monitor is disabled (PHISHLENS_DRIFT_ENABLED=false)")
    report = await asyncio.to_thread(rt.drift.report)  # may load a reference profile: off the event loop
    return DriftResponse(data=[drift_info(d) for d in report])
