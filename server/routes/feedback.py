"""POST /v1/feedback (DESIGN.md §5): true labels for served requests, by response id."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ApiKey, RuntimeDep
from ..errors import NotReady
from ..schemas_feedback import FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"], dependencies=[ApiKey])


@router.post("/v1/feedback", response_model=FeedbackResponse)
async def feedback(body: FeedbackRequest, rt: RuntimeDep) -> FeedbackResponse:
    """Record true labels for texts of a /v1/classify answer (idempotent: a verdict's first label wins)."""
    if rt.feedback is None:
        raise NotReady("feedback is not wired into this server")
    return FeedbackResponse.of(rt.feedback.record(body.request_id, body.to_labels()))
