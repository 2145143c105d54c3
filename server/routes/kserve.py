"""KServe V1 inference protocol: predict and model metadata; an adapter is a KServe "model"."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import (
    KServeExplainRequest,
    KServeExplainResponse,
    KServeModel,
    KServePredictRequest,
    KServePredictResponse,
)

from ..deps import ApiKey, ExplainKey, RuntimeDep
from ..services.explain import explanation_html
from ..wire import classify_result, explain_response, pipeline_input, pipeline_inputs
from .explain import service as explain_service

router = APIRouter(prefix="/v1/models", tags=["kserve"], dependencies=[ApiKey])


@router.post("/{name}:predict", response_model=KServePredictResponse)
async def predict(name: str, body: KServePredictRequest, rt: RuntimeDep) -> KServePredictResponse:
    out = await rt.classify.classify(pipeline_inputs(body.items), [name], field="instances")
    return KServePredictResponse(
        predictions=[classify_result(c, body.return_text) for c in out.results], id=out.request_id
    )


@router.post("/{name}:explain", response_model=KServeExplainResponse, dependencies=[ExplainKey])
async def explain(name: str, body: KServeExplainRequest, rt: RuntimeDep) -> KServeExplainResponse:
    out = await explain_service(rt).explain(
        pipeline_input(body.input),
        name,
        granularity=body.granularity,
        max_evals=body.max_evals,
        field="instances",
    )
    html = explanation_html(out) if body.html else None
    return KServeExplainResponse(explanations=[explain_response(out, html, body.return_text)])


@router.get("/{name}", response_model=KServeModel)
async def model_metadata(name: str, rt: RuntimeDep) -> KServeModel:
    entry = rt.registry.get(name)
    return KServeModel(
        name=entry.name, ready=True, sha256=entry.sha256, base_model=entry.manifest.base_model.ref
    )
