"""POST /v1/probe (DESIGN.md §5): parse, call the ProbeService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import ProbeRequest, ProbeResponse

from ..deps import ExplainKey, RuntimeDep
from ..errors import NotReady
from ..wire import pipeline_input, probe_response

router = APIRouter(tags=["probe"], dependencies=[ExplainKey])


@router.post("/v1/probe", response_model=ProbeResponse)
async def probe(body: ProbeRequest, rt: RuntimeDep) -> ProbeResponse:
    if rt.probe is None:
        raise NotReady("the probe service is not running")
    return probe_response(await rt.probe.probe(pipeline_input(body.input), body.adapter), body.return_text)
