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


# -- typed inputs (request side): what /v1/classify, /v1/explain, /v1/probe and KServe accept ------------
class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailInput(_Input):
    """A raw RFC 822 / MIME message; `encoding="base64"` when `email` holds the base64 of its bytes."""

    email: str
    encoding: Literal["text", "base64"] = "text"


class SmsInput(_Input):
    """An SMS; `sender` is reported back, never shown to the model."""

    sms: str
    sender: str | None = None


class UrlInput(_Input):
    url: str


# A plain string (style detected by the server), a typed input, or the same as a dict.
ClassifyInput = str | EmailInput | SmsInput | UrlInput | dict[str, Any]


class AttachmentInfo(WireModel):
    filename: str | None = None
    content_type: str
    size: int


class EmailParse(WireModel):
    """What the server's parser found in a raw e-mail (`email` inputs and detected raw messages)."""

    body_type: str
    attachments: list[AttachmentInfo] = Field(default_factory=list)
    forwarded: bool = False
    parts: int = 1
    defects: list[str] = Field(default_factory=list)


class ClassifyResult(WireModel):
    """One (input, adapter) score. `index` is the position of the input in the request.

    `style` is what was classified (email, sms, url) and `style_source` whether the caller gave it or the
    server detected it; `text` is the exact text the model saw (only when the request set `return_text`).
    """

    index: int
    label: Label
    probs: dict[str, float]  # {"phishing": p, "legitimate": 1 - p}
    score: float  # P(phishing), calibrated as served
    uncertain: bool = False
    truncated: bool = False
    adapter: AdapterRef | None = None
    style: Literal["email", "sms", "url"] | None = None
    style_source: Literal["given", "detected"] | None = None
    text: str | None = None
    email: EmailParse | None = None


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
    id: str | None = None  # phishlens: the signed request id `feedback()` takes


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
