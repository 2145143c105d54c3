"""POST /v1/feedback: true labels for texts of a served /v1/classify answer."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from .base import Label, Request, Response
from .classify import REQUEST_ID

REQUEST_ID_PATTERN = r"^clf-[A-Za-z0-9_-]+$"  # base64url of a signed payload (server/services/request_ids.py)
MAX_LABELS = 4096  # a request holds at most max_batch texts × max_loaded_adapters verdicts
MAX_REQUEST_ID_CHARS = 32_768  # 5 bytes per verdict: MAX_LABELS verdicts and their adapters fit


class FeedbackLabel(Request):
    index: int = Field(ge=0, description="position of the text in the classify request")
    label: Label = Field(description="the true label")
    adapter: str | None = Field(
        default=None, description="only this adapter's verdict (default: every adapter that scored the text)"
    )


class FeedbackRequest(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": REQUEST_ID,
                    "labels": [
                        {"index": 0, "label": "phishing"},
                        {"index": 1, "label": "legitimate", "adapter": "default"},
                    ],
                }
            ]
        }
    )

    request_id: str = Field(
        pattern=REQUEST_ID_PATTERN,
        max_length=MAX_REQUEST_ID_CHARS,
        description="the `id` of the /v1/classify response (signed: any replica accepts it)",
    )
    labels: list[FeedbackLabel] = Field(min_length=1, max_length=MAX_LABELS)


class FeedbackResult(Response):
    """A (text, adapter) verdict a feedback label applied to."""

    index: int
    adapter: str
    label: Label
    predicted: Label
    outcome: Literal["tp", "fp", "tn", "fn"]
    status: Literal["recorded", "duplicate", "conflict", "stale"] = Field(
        description="recorded; duplicate (same label already recorded); conflict (a different label was "
        "recorded first and stands); stale (the adapter was unloaded or replaced since: kept, "
        "not counted)"
    )


class FeedbackResponse(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "feedback",
                    "request_id": REQUEST_ID,
                    "recorded": 1,
                    "duplicates": 0,
                    "conflicts": 1,
                    "stale": 0,
                    "data": [
                        {
                            "index": 0,
                            "adapter": "default",
                            "label": "phishing",
                            "predicted": "phishing",
                            "outcome": "tp",
                            "status": "recorded",
                        },
                        {
                            "index": 1,
                            "adapter": "default",
                            "label": "legitimate",
                            "predicted": "phishing",
                            "outcome": "fp",
                            "status": "conflict",
                        },
                    ],
                }
            ]
        }
    )

    object: Literal["feedback"] = "feedback"
    request_id: str
    data: list[FeedbackResult]
    recorded: int
    duplicates: int
    conflicts: int
    stale: int
