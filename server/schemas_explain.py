"""Wire models for POST /v1/explain and KServe V1 `:explain` (DESIGN.md §5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from phishlens.training.contract import pipeline as P

from .schemas import AdapterRef, EmailParse, InputItem, KServeItem, _main_text, kserve_items, pipeline_input
from .services.explain import ExplainOutcome


def _non_empty(v: InputItem) -> InputItem:
    if not _main_text(v).strip():
        raise ValueError("input is empty; it needs at least one non-space character")
    return v


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    granularity: Literal["word", "token"] = Field(default="word",
                                                  description="attribute words or base-model tokens")
    max_evals: int | None = Field(default=None, ge=4,
                                  description="most unique texts scored (server default and cap apply)")
    html: bool = Field(default=False,
                       description="also return a self-contained HTML page highlighting the text")
    return_text: bool = Field(default=False, description="return the exact text the model saw")


class ExplainRequest(_Options):
    input: InputItem = Field(description='the one input to explain: a plain string (style detected), '
                                         '{"email": raw RFC 822}, {"sms": ...} or {"url": ...}')
    adapter: str | None = Field(default=None, description="adapter to explain (default adapter when omitted)")

    _check = field_validator("input")(_non_empty)

    @property
    def item(self) -> P.InputItem:
        return pipeline_input(self.input)


class ExplainResponse(BaseModel):
    id: str
    object: Literal["explanation"] = "explanation"
    adapter: AdapterRef
    label: Literal["phishing", "legitimate"]
    uncertain: bool
    truncated: bool
    granularity: Literal["word", "token"]
    output_space: str = Field(description="units of base_value, prediction and attributions")
    tokens: list[str] = Field(description="substrings of masked_text, in order; they concatenate to it")
    attributions: list[float] = Field(description="one per token; base_value + sum = prediction")
    base_value: float = Field(description="score of the fully masked text")
    prediction: float = Field(description="P(phishing) of masked_text, calibrated as served")
    additivity_error: float
    evaluations: int = Field(description="unique texts scored")
    max_evals: int
    masked_text: str = Field(description="the text explained: the model text (`text`), whitespace normalised")
    seconds: float
    html: str | None = None
    style: Literal["email", "sms", "url"] = Field(description="what was explained")
    style_source: Literal["given", "detected"]
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")

    @classmethod
    def of(cls, out: ExplainOutcome, html: str | None = None, return_text: bool = False) -> "ExplainResponse":
        a = out.attribution
        inp = out.input
        return cls(id=out.id, adapter=AdapterRef(name=out.adapter, sha256=out.adapter_sha256),
                   label=out.label,  # type: ignore[arg-type]
                   uncertain=out.uncertain, truncated=out.truncated,
                   granularity=a.granularity, output_space=a.output_space,  # type: ignore[arg-type]
                   tokens=a.tokens, attributions=a.attributions, base_value=a.base_value,
                   prediction=a.prediction,
                   additivity_error=a.additivity_error, evaluations=a.evaluations, max_evals=a.max_evals,
                   masked_text=a.masked_text, seconds=round(out.seconds, 4), html=html,
                   style=inp.style, style_source=inp.style_source,  # type: ignore[arg-type]
                   text=inp.text if return_text else None, email=EmailParse.of(inp.email))


class KServeExplainRequest(_Options):
    instances: list[KServeItem] = Field(min_length=1, max_length=1,
                                        description="exactly one input (an explanation is per input)")

    @property
    def item(self) -> P.InputItem:
        return pipeline_input(kserve_items(self.instances)[0])

    @model_validator(mode="after")
    def _check(self) -> "KServeExplainRequest":
        _non_empty(kserve_items(self.instances)[0])
        return self


class KServeExplainResponse(BaseModel):
    explanations: list[ExplainResponse]
