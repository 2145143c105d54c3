"""Wire models of POST /v1/probe (DESIGN.md §5): per-layer probe outputs and the logit-lens curve."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .schemas import AdapterRef, Usage
from .services.probe import ProbeOutcome


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="one text")
    adapter: str | None = Field(default=None, description="adapter to probe (default adapter when omitted)")

    @field_validator("input")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("input is empty; it needs at least one non-space character")
        return v


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

    @classmethod
    def of(cls, o: ProbeOutcome) -> "ProbeResponse":
        return cls(adapter=AdapterRef(name=o.adapter, sha256=o.adapter_sha256), layers=o.layers, probes=o.probes,
                   probe_accuracy=o.probe_accuracy, logit_lens=o.logit_lens, score=o.p_phishing,
                   label=o.label, uncertain=o.uncertain, truncated=o.truncated,  # type: ignore[arg-type]
                   usage=Usage(texts=1, prompt_tokens=o.n_prompt_tokens))
