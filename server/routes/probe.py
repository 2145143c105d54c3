"""POST /v1/probe (DESIGN.md §5): parse, call the ProbeService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ExplainKey, RuntimeDep
from ..errors import NotReady
from ..schemas_probe import ProbeRequest, ProbeResponse

router = APIRouter(tags=["probe"], dependencies=[ExplainKey])


@router.post("/v1/probe", response_model=ProbeResponse)
async def probe(body: ProbeRequest, rt: RuntimeDep) -> ProbeResponse:
    if rt.probe is None:
        raise NotReady("the probe service is not running")
    return ProbeResponse.of(await rt.probe.probe(body.item, body.adapter), body.return_text)
