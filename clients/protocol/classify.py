"""POST /v1/classify (DESIGN.md §5): one input or a list, through one adapter or several."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import Label, Request, Response, Style, StyleSource
from .inputs import InputItem, check_texts

SHA = "9f2c4e0b7d1a6c3e8b5f2a9d4c7e1b0a3f6d9c2e5b8a1d4f7c0e3b6a9d2c5f8e"  # a bundle sha256 in examples
REQUEST_ID = "clf-AQAAAGdKq2gBAAAAAQdkZWZhdWx0"  # a signed request id in examples


class ClassifyRequest(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input": [
                        "Your parcel is held: pay 1.99 at http://parcel.example/x",
                        {"url": "paypal.com.secure.example"},
                    ],
                    "adapter": "default",
                },
                {
                    "input": {"sms": "Your code is 4411", "sender": "+4470"},
                    "adapters": ["default", "specialist-sms"],
                    "return_text": True,
                },
            ]
        }
    )

    input: InputItem | list[InputItem] = Field(
        description='one input or a list: a plain string (style detected), {"email": raw RFC 822}, '
        '{"sms": text, "sender"?}, or {"url": url}'
    )
    return_text: bool = Field(
        default=False, description="return the exact text the model saw with each result"
    )
    adapter: str | None = Field(
        default=None,
        description='adapter to use (default adapter when omitted; "auto": '
        "each text to the adapter PHISHLENS_ROUTES names for "
        "its style)",
    )
    adapters: list[str] | None = Field(
        default=None, min_length=1, description="score each input with each of these adapters"
    )

    @field_validator("adapters")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("adapters must not repeat a name")
        return v

    @model_validator(mode="after")
    def _check(self) -> ClassifyRequest:
        if self.adapter is not None and self.adapters is not None:
            raise ValueError("give either 'adapter' or 'adapters', not both")
        check_texts(self.items, "input")
        return self

    @property
    def items(self) -> list[InputItem]:
        return list(self.input) if isinstance(self.input, list) else [self.input]

    @property
    def adapter_names(self) -> list[str | None]:
        return list(self.adapters) if self.adapters is not None else [self.adapter]


class AdapterRef(Response):
    """Which adapter produced a result: its name and the bundle's content hash."""

    name: str
    sha256: str


class AttachmentInfo(Response):
    filename: str | None
    content_type: str
    size: int = Field(description="bytes (from the transfer encoding; attachments are never decoded)")


class EmailParse(Response):
    """What the server's parser found in a raw e-mail (no message text)."""

    body_type: str = Field(description="text/plain, text/html (rendered to text) or none")
    attachments: list[AttachmentInfo]
    forwarded: bool = Field(description="a forwarded message (message/rfc822) was appended to the body")
    parts: int = Field(description="MIME parts")
    defects: list[str] = Field(description="MIME defects the parser recorded (e.g. a missing boundary)")


class OodInfo(Response):
    """How far the text lies from the adapter's reference texts (explain/ood.py): a verdict on text unlike
    anything the adapter was built on deserves less trust."""

    score: float = Field(
        description="kNN cosine distance of the text's MiniLM embedding to the adapter's "
        "reference embeddings, scaled so 1.0 = the reference's own 99th percentile"
    )
    flagged: bool = Field(description="score > threshold: out of distribution for this adapter")
    threshold: float = Field(description="flags 5 % (PHISHLENS_OOD_FLAG_RATE) of the reference texts")


class ClassifyResult(Response):
    """One (input, adapter) score; `index` is the position of the input in the request."""

    index: int
    label: Label
    probs: dict[str, float] = Field(description='{"phishing": p, "legitimate": 1 - p}')
    score: float = Field(description="P(phishing), calibrated")
    uncertain: bool
    truncated: bool
    adapter: AdapterRef
    style: Style = Field(description="what was classified")
    style_source: StyleSource = Field(
        description="given: a typed input said so; detected: the server detected it from a plain string"
    )
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")
    ood: OodInfo | None = Field(
        default=None,
        description="out-of-distribution flag (absent when the adapter "
        "has no reference or PHISHLENS_OOD_ENABLED=false)",
    )


class Usage(Response):
    texts: int
    prompt_tokens: int


def _result_example(index: int, p: float, style: str, source: str = "detected") -> dict:
    return {
        "index": index,
        "label": "phishing" if p >= 0.5 else "legitimate",
        "probs": {"phishing": p, "legitimate": round(1 - p, 6)},
        "score": p,
        "uncertain": 0.4 <= p <= 0.6,
        "truncated": False,
        "adapter": {"name": "default", "sha256": SHA},
        "style": style,
        "style_source": source,
        "text": None,
        "email": None,
        "ood": {"score": 0.42, "flagged": False, "threshold": 1.0},
    }


class ClassifyResponse(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": REQUEST_ID,
                    "object": "classification",
                    "data": [_result_example(0, 0.97, "sms"), _result_example(1, 0.88, "url", "given")],
                    "usage": {"texts": 2, "prompt_tokens": 93},
                },
                {
                    "id": REQUEST_ID,
                    "object": "classification",
                    "data": [
                        {
                            **_result_example(0, 0.12, "email", "given"),
                            "email": {
                                "body_type": "text/html",
                                "forwarded": False,
                                "parts": 3,
                                "defects": [],
                                "attachments": [
                                    {
                                        "filename": "invoice.pdf",
                                        "content_type": "application/pdf",
                                        "size": 20480,
                                    }
                                ],
                            },
                        }
                    ],
                    "usage": {"texts": 1, "prompt_tokens": 412},
                },
            ]
        }
    )

    id: str
    object: Literal["classification"] = "classification"
    data: list[ClassifyResult]
    usage: Usage
