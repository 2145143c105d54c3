"""Wire models of POST /v1/feedback: true labels for texts of a served /v1/classify answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .services.feedback import FeedbackItem, FeedbackReport, LabelIn

REQUEST_ID_PATTERN = r"^clf-[A-Za-z0-9_-]+$"  # base64url of a signed payload (services/request_ids.py)
MAX_LABELS = 4096  # a request holds at most max_batch texts × max_loaded_adapters verdicts
MAX_REQUEST_ID_CHARS = 32_768  # 5 bytes per verdict: MAX_LABELS verdicts and their adapters fit


class FeedbackLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="position of the text in the classify request")
    label: Literal["phishing", "legitimate"] = Field(description="the true label")
    adapter: str | None = Field(default=None, description="only this adapter's verdict (default: every "
                                                          "adapter that scored the text)")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, max_length=MAX_REQUEST_ID_CHARS,
                            description="the `id` of the /v1/classify response (signed: any replica accepts it)")
    labels: list[FeedbackLabel] = Field(min_length=1, max_length=MAX_LABELS)

    def to_labels(self) -> list[LabelIn]:
        return [LabelIn(x.index, x.label, x.adapter) for x in self.labels]


class FeedbackResult(BaseModel):
    index: int
    adapter: str
    label: Literal["phishing", "legitimate"]
    predicted: Literal["phishing", "legitimate"]
    outcome: Literal["tp", "fp", "tn", "fn"]
    status: Literal["recorded", "duplicate", "conflict", "stale"] = Field(
        description="recorded; duplicate (same label already recorded); conflict (a different label was "
                    "recorded first and stands); stale (the adapter was unloaded or replaced since: kept, "
                    "not counted)")

    @classmethod
    def of(cls, i: FeedbackItem) -> FeedbackResult:
        return cls(index=i.index, adapter=i.adapter, label=i.label,  # type: ignore[arg-type]
                   predicted=i.predicted, outcome=i.outcome, status=i.status)  # type: ignore[arg-type]


class FeedbackResponse(BaseModel):
    object: Literal["feedback"] = "feedback"
    request_id: str
    data: list[FeedbackResult]
    recorded: int
    duplicates: int
    conflicts: int
    stale: int

    @classmethod
    def of(cls, r: FeedbackReport) -> FeedbackResponse:
        return cls(request_id=r.request_id, data=[FeedbackResult.of(i) for i in r.items],
                   recorded=r.count("recorded"), duplicates=r.count("duplicate"),
                   conflicts=r.count("conflict"), stale=r.count("stale"))
