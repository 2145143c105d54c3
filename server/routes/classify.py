"""POST /v1/classify (DESIGN.md §5): parse, call the ClassifyService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ApiKey, RuntimeDep
from ..schemas import ClassifyRequest, ClassifyResponse, ClassifyResult, Usage

router = APIRouter(tags=["classify"], dependencies=[ApiKey])


@router.post("/v1/classify", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest, rt: RuntimeDep) -> ClassifyResponse:
    out = await rt.classify.classify(body.texts, body.adapter_names)
    return ClassifyResponse(id=out.request_id, data=[ClassifyResult.of(c) for c in out.results],
                            usage=Usage(texts=out.n_texts, prompt_tokens=out.prompt_tokens))
