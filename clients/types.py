"""Wire models of the phishlens HTTP API as the client sees them (DESIGN.md §5).

They mirror the server's response schemas but are written independently (clients/ imports nothing of
the server) and accept extra fields (`extra="allow"`), so a newer server that adds fields does not
break an older client.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["phishing", "legitimate"]


class WireModel(BaseModel):
    """Base for every response model: unknown fields are kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AdapterRef(WireModel):
    """Which adapter produced a result: its name and the bundle's content hash."""

    name: str
    sha256: str | None = None


class ClassifyResult(WireModel):
    """One (input, adapter) score. `index` is the position of the input in the request."""

    index: int
    label: Label
    probs: dict[str, float]  # {"phishing": p, "legitimate": 1 - p}
    score: float  # P(phishing), calibrated as served
    uncertain: bool = False
    truncated: bool = False
    adapter: AdapterRef | None = None


class Usage(WireModel):
    texts: int = 0
    prompt_tokens: int = 0


class ClassifyResponse(WireModel):
    id: str | None = None
    object: str = "classification"
    data: list[ClassifyResult]
    usage: Usage = Field(default_factory=Usage)


class AdapterCalibration(WireModel):
    """Label rule of an adapter: phishing when score >= threshold; `uncertain` inside [low, high]."""

    threshold: float
    uncertain_low: float
    uncertain_high: float
    temperature: float | None = None


class AdapterInfo(WireModel):
    """An adapter the server hosts (`GET /v1/adapters` entries, `POST /v1/adapters` answer)."""

    name: str
    sha256: str | None = None
    base_model: str | None = None
    default: bool = False
    calibration: AdapterCalibration | None = None
    metrics: dict[str, Any] | None = None


class AdapterList(WireModel):
    data: list[AdapterInfo]


class HealthStatus(WireModel):
    """`GET /health` and `GET /ready` bodies; the server decides what else to report."""

    status: str | None = None


class PredictResponse(WireModel):
    """KServe V1 `:predict` answer."""

    predictions: list[Any]


class ModelInfo(WireModel):
    """KServe V1 `GET /v1/models/{name}` answer."""

    name: str
    ready: bool | None = None


class FeedbackResult(WireModel):
    """A (text, adapter) verdict a feedback label applied to; `status`: recorded|duplicate|conflict|stale."""

    index: int
    adapter: str
    label: Label
    predicted: Label
    outcome: Literal["tp", "fp", "tn", "fn"]
    status: str


class FeedbackResponse(WireModel):
    """`POST /v1/feedback` answer."""

    request_id: str
    data: list[FeedbackResult]
    recorded: int = 0
    duplicates: int = 0
    conflicts: int = 0
    stale: int = 0


class ErrorDetail(WireModel):
    type: str
    message: str


class ErrorBody(WireModel):
    """The one error body every non-2xx response carries: `{"error": {"type", "message"}}`."""

    error: ErrorDetail
