"""Wire models of POST /v1/probe (DESIGN.md §5): per-layer probe outputs and the logit-lens curve."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phishlens.training.contract import pipeline as P

from .schemas import AdapterRef, EmailParse, InputItem, Usage, _main_text, pipeline_input
from .services.probe import ProbeOutcome


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: InputItem = Field(description='one input: a plain string (style detected), {"email": raw RFC 822},'
                                         ' {"sms": ...} or {"url": ...}')
    adapter: str | None = Field(default=None, description="adapter to probe (default adapter when omitted)")
    return_text: bool = Field(default=False, description="return the exact text the model saw")

    @field_validator("input")
    @classmethod
    def _not_blank(cls, v: InputItem) -> InputItem:
        if not _main_text(v).strip():
            raise ValueError("input is empty; it needs at least one non-space character")
        return v

    @property
    def item(self) -> P.InputItem:
        return pipeline_input(self.input)


class ProbeResponse(BaseModel):
    object: Literal["probe"] = "probe"
    adapter: AdapterRef
    layers: list[str] = Field(description="layer names, `layer.{i}.resid_post`")
    probes: dict[str, list[Any]] = Field(
        description="probe name → value per layer: P(positive class) for binary probes "
                    "(label: P(phishing); concept.*: P(present)), {class: p} for style and source")
    probe_accuracy: dict[str, list[float]] = Field(description="held-out accuracy of each probe per layer")
    logit_lens: list[float] = Field(description="calibrated P(phishing) read from each layer; the last "
                                                "entry equals the served score")
    score: float = Field(description="P(phishing) as /v1/classify serves it")
    label: Literal["phishing", "legitimate"]
    uncertain: bool
    truncated: bool
    usage: Usage
    style: Literal["email", "sms", "url"] = Field(description="what was probed")
    style_source: Literal["given", "detected"]
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")

    @classmethod
    def of(cls, o: ProbeOutcome, return_text: bool = False) -> "ProbeResponse":
        inp = o.input
        assert inp is not None  # the service always sets it
        return cls(style=inp.style, style_source=inp.style_source,  # type: ignore[arg-type]
                   text=inp.text if return_text else None, email=EmailParse.of(inp.email),
                   adapter=AdapterRef(name=o.adapter, sha256=o.adapter_sha256), layers=o.layers,
                   probes=o.probes, probe_accuracy=o.probe_accuracy, logit_lens=o.logit_lens,
                   score=o.p_phishing,
                   label=o.label, uncertain=o.uncertain, truncated=o.truncated,  # type: ignore[arg-type]
                   usage=Usage(texts=1, prompt_tokens=o.n_prompt_tokens))
