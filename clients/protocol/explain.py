"""POST /v1/explain and KServe V1 `:explain` (DESIGN.md §5): SHAP attributions of one input."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import Label, Request, Response, Style, StyleSource
from .classify import SHA, AdapterRef, EmailParse
from .inputs import InputItem, KServeItem, check_text, kserve_items


class ExplainOptions(Request):
    granularity: Literal["word", "token"] = Field(
        default="word", description="attribute words or base-model tokens"
    )
    max_evals: int | None = Field(
        default=None, ge=4, description="most unique texts scored (server default and cap apply)"
    )
    html: bool = Field(
        default=False, description="also return a self-contained HTML page highlighting the text"
    )
    return_text: bool = Field(default=False, description="return the exact text the model saw")


class ExplainRequest(ExplainOptions):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "input": "Your account is locked, verify at http://bank.example/login",
                    "adapter": "default",
                    "max_evals": 200,
                },
                {
                    "input": {"sms": "Parcel held: pay 1.99 at http://x.example"},
                    "granularity": "token",
                    "html": True,
                },
            ]
        }
    )

    input: InputItem = Field(
        description="the one input to explain: a plain string (style detected), "
        '{"email": raw RFC 822}, {"sms": ...} or {"url": ...}'
    )
    adapter: str | None = Field(default=None, description="adapter to explain (default adapter when omitted)")

    _check = field_validator("input")(check_text)


_EXPLAIN_EXAMPLE = {
    "id": "exp-5b0e3a1c9d7f4e2a8c6b1d3f5a7e9c0b",
    "object": "explanation",
    "adapter": {"name": "default", "sha256": SHA},
    "label": "phishing",
    "uncertain": False,
    "truncated": False,
    "granularity": "word",
    "output_space": "probability",
    "tokens": ["Your ", "account ", "is ", "locked, ", "verify ", "at ", "http://bank.example/login"],
    "attributions": [0.01, 0.05, 0.0, 0.12, 0.21, 0.0, 0.35],
    "base_value": 0.2,
    "prediction": 0.94,
    "additivity_error": 1e-07,
    "evaluations": 200,
    "max_evals": 200,
    "masked_text": "Your account is locked, verify at http://bank.example/login",
    "seconds": 3.2101,
    "html": None,
    "style": "url",
    "style_source": "detected",
    "text": None,
    "email": None,
}


class ExplainResponse(Response):
    """SHAP attributions of one text: `base_value + sum(attributions) == prediction` (± `additivity_error`).

    `tokens` concatenate to `masked_text`, the input with whitespace normalised (what was explained).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_EXPLAIN_EXAMPLE]})

    id: str
    object: Literal["explanation"] = "explanation"
    adapter: AdapterRef
    label: Label
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
    style: Style = Field(description="what was explained")
    style_source: StyleSource
    text: str | None = Field(default=None, description="the exact text the model saw (when return_text)")
    email: EmailParse | None = Field(default=None, description="the parse of a raw e-mail input")

    def top(self, k: int = 5, sign: int = 1) -> list[tuple[str, float]]:
        """The k tokens pushing hardest towards phishing (sign=1) or legitimate (sign=-1)."""
        order = sorted(range(len(self.tokens)), key=lambda i: (-sign * self.attributions[i], i))[:k]
        return [(self.tokens[i].strip(), self.attributions[i]) for i in order]


class KServeExplainRequest(ExplainOptions):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instances": [{"text": "Your account is locked, verify at http://bank.example/login"}],
                    "max_evals": 100,
                },
            ]
        }
    )

    instances: list[KServeItem] = Field(
        min_length=1, max_length=1, description="exactly one input (an explanation is per input)"
    )

    @property
    def input(self) -> InputItem:
        return kserve_items(self.instances)[0]

    @model_validator(mode="after")
    def _check(self) -> KServeExplainRequest:
        check_text(self.input)
        return self


class KServeExplainResponse(Response):
    model_config = ConfigDict(json_schema_extra={"examples": [{"explanations": [_EXPLAIN_EXAMPLE]}]})

    explanations: list[ExplainResponse]
