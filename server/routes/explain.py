"""POST /v1/explain (DESIGN.md §5): parse, call the ExplainService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import ExplainRequest, ExplainResponse

from ..deps import ExplainKey, RuntimeDep
from ..errors import NotReady
from ..services.explain import ExplainService, explanation_html
from ..wire import explain_response, pipeline_input

router = APIRouter(tags=["explain"], dependencies=[ExplainKey])


def service(rt: RuntimeDep) -> ExplainService:
    if rt.explain is None:
        raise NotReady("the explain service is not running")
    return rt.explain


@router.post("/v1/explain", response_model=ExplainResponse)
async def explain(body: ExplainRequest, rt: RuntimeDep) -> ExplainResponse:
    """SHAP attributions of one text through one adapter (hundreds of forward passes: limited concurrency)."""
    out = await service(rt).explain(
        pipeline_input(body.input), body.adapter, granularity=body.granularity, max_evals=body.max_evals
    )
    return explain_response(out, explanation_html(out) if body.html else None, body.return_text)
