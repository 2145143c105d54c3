"""Wire models (pydantic) for the HTTP API (DESIGN.md §5); services return dataclasses, routes convert."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from phishlens.training.contract import pipeline as P

from .services.classify import Classification


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- typed inputs (DESIGN.md §3a): a plain string (style detected) or one of these objects ----------------
class EmailItem(_Request):
    """A raw RFC 822 / MIME message as received (headers and body); `encoding: base64` when `email` holds
    the base64 of the message's bytes (8-bit bodies in any charset arrive byte for byte)."""

    email: str = Field(description="the raw message (RFC 822 / MIME), or its base64 when encoding=base64")
    encoding: Literal["text", "base64"] = "text"

    @model_validator(mode="after")
    def _decodable(self) -> "EmailItem":
        self.raw  # noqa: B018 - validate base64 here so a bad one is a 422
        return self

    @property
    def raw(self) -> bytes | str:
        if self.encoding == "text":
            return self.email
        try:
            return base64.b64decode(self.email, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("email is not valid base64 (encoding=base64)") from None


class SmsItem(_Request):
    sms: str = Field(description="the SMS text")
    sender: str | None = Field(default=None, max_length=256,
                               description="sender number or name: reported back, not shown to the model")


class UrlItem(_Request):
    url: str = Field(description="one URL")


InputItem = str | EmailItem | SmsItem | UrlItem


def pipeline_input(item: InputItem) -> P.InputItem:
    """The wire item as the input pipeline's type."""
    if isinstance(item, EmailItem):
        return P.EmailInput(item.raw)
    if isinstance(item, SmsItem):
        return P.SmsInput(item.sms, item.sender)
    if isinstance(item, UrlItem):
        return P.UrlInput(item.url)
    return item


def _main_text(item: InputItem) -> str | bytes:
    if isinstance(item, EmailItem):
        return item.email
    if isinstance(item, SmsItem):
        return item.sms
    if isinstance(item, UrlItem):
        return item.url
    return item


def _check_texts(items: list[InputItem], field: str) -> list[InputItem]:
    if not items:
        raise ValueError(f"{field} must contain at least one text")
    empty = [i for i, t in enumerate(items) if not _main_text(t).strip()]
    if empty:
        raise ValueError(f"{field}[{empty[0]}] is empty; every text needs at least one non-space character")
    return items


class ClassifyRequest(_Request):
    input: InputItem | list[InputItem] = Field(
        description='one input or a list: a plain string (style detected), {"email": raw RFC 822}, '
                    '{"sms": text, "sender"?}, or {"url": url}')
    return_text: bool = Field(default=False,
                              description="return the exact text the model saw with each result")
    adapter: str | None = Field(default=None, description="adapter to use (default adapter when omitted)")
    adapters: list[str] | None = Field(default=None, min_length=1,
                                       description="score each input with each of these adapters")

    @field_validator("adapters")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("adapters must not repeat a name")
        return v

    @model_validator(mode="after")
    def _check(self) -> "ClassifyRequest":
        if self.adapter is not None and self.adapters is not None:
            raise ValueError("give either 'adapter' or 'adapters', not both")
        _check_texts(self.items, "input")
        return self

    @property
    def items(self) -> list[InputItem]:
        return list(self.input) if isinstance(self.input, list) else [self.input]

    @property
    def inputs(self) -> list[P.InputItem]:
        """The inputs as the pipeline's types."""
        return [pipeline_input(i) for i in self.items]

    @property
    def adapter_names(self) -> list[str | None]:
        return list(self.adapters) if self.adapters is not None else [self.adapter]


class AdapterRef(BaseModel):
    name: str
    sha256: str


class AttachmentInfo(BaseModel):
    filename: str | None
    content_type: str
    size: int = Field(description="bytes (from the transfer encoding; attachments are never decoded)")


class EmailParse(BaseModel):
    """What the server's parser found in a raw e-mail (no message text)."""

    body_type: str = Field(description="text/plain, text/html (rendered to text) or none")
    attachments: list[AttachmentInfo]
    forwarded: bool = Field(description="a forwarded message (message/rfc822) was appended to the body")
    parts: int = Field(description="MIME parts")
    defects: list[str] = Field(description="MIME defects the parser recorded (e.g. a missing boundary)")

    @classmethod
    def of(cls, e: P.EmailSummary | None) -> "EmailParse | None":
        if e is None:
            return None
        attachments = [AttachmentInfo(filename=a.filename, content_type=a.content_type, size=a.size)
                       for a in e.attachments]
        return cls(body_type=e.body_type, attachments=attachments,
                   forwarded=e.forwarded, parts=e.parts, defects=list(e.defects))


class ClassifyResult(BaseModel):
    index: int
    label: Literal["phishing", "legitimate"]
    probs: dict[str, float] = Field(description='{"phishing": p, "legitimate": 1 - p}')
    score: float = Field(description="P(phishing), calibrated")
    uncertain: bool
    truncated: bool
    adapter: AdapterRef
    style: Literal["email", "sms", "url"] = Field(description="what was classified")
    style_source: Literal["given", "detected"] = Field(
        description="given: a typed input said so; detected: the server detected it from a plain string")
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")

    @classmethod
    def of(cls, c: Classification, return_text: bool = False) -> "ClassifyResult":
        return cls(index=c.index, label=c.label,  # type: ignore[arg-type]
                   probs={"phishing": c.p_phishing, "legitimate": 1.0 - c.p_phishing}, score=c.p_phishing,
                   uncertain=c.uncertain, truncated=c.truncated,
                   adapter=AdapterRef(name=c.adapter, sha256=c.adapter_sha256),
                   style=c.style, style_source=c.style_source,  # type: ignore[arg-type]
                   text=c.text if return_text else None, email=EmailParse.of(c.email))


class Usage(BaseModel):
    texts: int
    prompt_tokens: int


class ClassifyResponse(BaseModel):
    id: str
    object: Literal["classification"] = "classification"
    data: list[ClassifyResult]
    usage: Usage


class AdapterCalibration(BaseModel):
    """How a served score becomes a label: phishing when score >= threshold; uncertain inside the band."""

    threshold: float
    uncertain_low: float
    uncertain_high: float
    temperature: float


class AdapterInfo(BaseModel):
    name: str
    sha256: str
    default: bool
    base_model: str
    labels: list[str]
    created: str
    loaded_at: float
    calibration: AdapterCalibration
    metrics: dict[str, Any] = Field(
        description="the bundle manifest's metrics: test.<style>, unseen.<source>, cross_domain")


class AdapterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AdapterInfo]


class LoadAdapterRequest(_Request):
    path: str = Field(min_length=1, description="bundle name under an adapter root, or a path inside one")
    name: str | None = Field(default=None, description="serve it under this name (default: manifest name)")


class UnloadResponse(BaseModel):
    name: str
    unloaded: bool = True


# -- KServe V1 -----------------------------------------------------------------------------------------
class KServeInstance(_Request):
    text: str


KServeItem = str | KServeInstance | EmailItem | SmsItem | UrlItem


def kserve_items(instances: list[KServeItem]) -> list[InputItem]:
    return [i.text if isinstance(i, KServeInstance) else i for i in instances]


class KServePredictRequest(BaseModel):
    instances: list[KServeItem] = Field(
        description='texts ({"text": ...} or plain strings, style detected) or typed inputs ({"email": ...}, '
                    '{"sms": ...}, {"url": ...})')
    return_text: bool = Field(default=False,
                              description="return the exact text the model saw with each result")

    @property
    def items(self) -> list[InputItem]:
        return kserve_items(self.instances)

    @property
    def inputs(self) -> list[P.InputItem]:
        return [pipeline_input(i) for i in self.items]

    @model_validator(mode="after")
    def _check(self) -> "KServePredictRequest":
        _check_texts(self.items, "instances")
        return self


class KServePredictResponse(BaseModel):
    predictions: list[ClassifyResult]
    id: str = Field(description="signed request id: POST /v1/feedback takes it, on any replica (not in KServe's "
                                "V1 schema; KServe clients ignore extra fields)")


class KServeModel(BaseModel):
    name: str
    ready: bool
    sha256: str
    base_model: str
    platform: str = "phishlens"
