"""POST /v1/classify (DESIGN.md §5): parse, call the ClassifyService, shape the response."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ApiKey, RuntimeDep
from ..schemas import ClassifyRequest, ClassifyResponse, ClassifyResult, Usage

router = APIRouter(tags=["classify"], dependencies=[ApiKey])


@router.post("/v1/classify", response_model=ClassifyResponse)
async def classify(body: ClassifyRequest, rt: RuntimeDep) -> ClassifyResponse:
    out = await rt.classify.classify(body.inputs, body.adapter_names)
    data = [ClassifyResult.of(c, body.return_text) for c in out.results]
    return ClassifyResponse(id=out.request_id, data=data,
                            usage=Usage(texts=out.n_texts, prompt_tokens=out.prompt_tokens))
