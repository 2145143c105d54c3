"""POST /v1/feedback (DESIGN.md §5): true labels for served requests, by response id."""

from __future__ import annotations

from fastapi import APIRouter

from phishlens.clients.protocol import FeedbackRequest, FeedbackResponse

from ..deps import ApiKey, RuntimeDep
from ..errors import NotReady
from ..wire import feedback_labels, feedback_response

router = APIRouter(tags=["feedback"], dependencies=[ApiKey])


@router.post("/v1/feedback", response_model=FeedbackResponse)
async def feedback(body: FeedbackRequest, rt: RuntimeDep) -> FeedbackResponse:
    """Record true labels for texts of a /v1/classify answer (idempotent: a verdict's first label wins)."""
    if rt.feedback is None:
        raise NotReady("feedback is not wired into this server")
    return feedback_response(rt.feedback.record(body.request_id, feedback_labels(body)))
