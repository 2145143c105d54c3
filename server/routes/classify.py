"""POST /v1/classify (DESIGN.md §5): parse, call the ClassifyService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import ClassifyRequest, ClassifyResponse, Usage

from ..deps import ApiKey, RuntimeDep
from ..wire import classify_result, pipeline_inputs

router = APIRouter(tags=["classify"], dependencies=[ApiKey])


@router.post("/v1/classify", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest, rt: RuntimeDep) -> ClassifyResponse:
    out = await rt.classify.classify(pipeline_inputs(body.items), body.adapter_names)
    data = [classify_result(c, body.return_text) for c in out.results]
    return ClassifyResponse(
        id=out.request_id, data=data, usage=Usage(texts=out.n_texts, prompt_tokens=out.prompt_tokens)
    )
