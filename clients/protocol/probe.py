"""POST /v1/probe (DESIGN.md §5): per-layer probe outputs and the logit-lens curve of one input."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from .base import Label, Request, Response, Style, StyleSource
from .classify import SHA, AdapterRef, EmailParse, Usage
from .inputs import InputItem, check_text


class ProbeRequest(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"input": "Your parcel is held: pay 1.99 at http://parcel.example/x", "adapter": "default"},
                {"input": {"url": "paypal.com.secure.example/login"}, "return_text": True},
            ]
        }
    )

    input: InputItem = Field(
        description='one input: a plain string (style detected), {"email": raw RFC 822},'
        ' {"sms": ...} or {"url": ...}'
    )
    adapter: str | None = Field(default=None, description="adapter to probe (default adapter when omitted)")
    return_text: bool = Field(default=False, description="return the exact text the model saw")

    _check = field_validator("input")(check_text)


class ProbeResponse(Response):
    """Per-layer readings of one text: probe outputs, their held-out accuracy, and the logit lens.

    `probes[name][i]` is layer `layers[i]`'s reading: P(positive) for binary probes (`label`:
    P(phishing), `concept.*`: P(present)), a {class: p} dict for `style` and `source`.
    `logit_lens[i]` is the calibrated P(phishing) read from layer i; the last equals `score`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "probe",
                    "adapter": {"name": "default", "sha256": SHA},
                    "layers": ["layer.0.resid_post", "layer.15.resid_post", "layer.29.resid_post"],
                    "probes": {
                        "label": [0.41, 0.83, 0.96],
                        "style": [
                            {"email": 0.1, "sms": 0.8, "url": 0.1},
                            {"email": 0.02, "sms": 0.97, "url": 0.01},
                            {"email": 0.01, "sms": 0.98, "url": 0.01},
                        ],
                    },
                    "probe_accuracy": {"label": [0.62, 0.88, 0.95], "style": [0.9, 0.99, 0.99]},
                    "logit_lens": [0.5, 0.71, 0.97],
                    "score": 0.97,
                    "label": "phishing",
                    "uncertain": False,
                    "truncated": False,
                    "usage": {"texts": 1, "prompt_tokens": 48},
                    "style": "sms",
                    "style_source": "detected",
                    "text": None,
                    "email": None,
                }
            ]
        }
    )

    object: Literal["probe"] = "probe"
    adapter: AdapterRef
    layers: list[str] = Field(description="layer names, `layer.{i}.resid_post`")
    probes: dict[str, list[Any]] = Field(
        description="probe name → value per layer: P(positive class) for binary probes "
        "(label: P(phishing); concept.*: P(present)), {class: p} for style and source"
    )
    probe_accuracy: dict[str, list[float]] = Field(description="held-out accuracy of each probe per layer")
    logit_lens: list[float] = Field(
        description="calibrated P(phishing) read from each layer; the last entry equals the served score"
    )
    score: float = Field(description="P(phishing) as /v1/classify serves it")
    label: Label
    uncertain: bool
    truncated: bool
    usage: Usage
    style: Style = Field(description="what was probed")
    style_source: StyleSource
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")
