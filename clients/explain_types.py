"""Wire models of `POST /v1/explain` as the client sees them (mirror server/schemas_explain.py)."""

from __future__ import annotations

from pydantic import Field

from phishlens.clients.types import AdapterRef, Label, WireModel


class ExplainResponse(WireModel):
    """SHAP attributions of one text: `base_value + sum(attributions) == prediction` (± `additivity_error`).

    `tokens` concatenate to `masked_text`, the input with whitespace normalised (what was explained).
    """

    id: str | None = None
    object: str = "explanation"
    adapter: AdapterRef | None = None
    label: Label
    uncertain: bool = False
    truncated: bool = False
    granularity: str = "word"
    output_space: str = "probability"
    tokens: list[str]
    attributions: list[float]
    base_value: float
    prediction: float
    additivity_error: float = 0.0
    evaluations: int = 0
    max_evals: int = 0
    masked_text: str = ""
    seconds: float = 0.0
    html: str | None = None

    def top(self, k: int = 5, sign: int = 1) -> list[tuple[str, float]]:
        """The k tokens pushing hardest towards phishing (sign=1) or legitimate (sign=-1)."""
        order = sorted(range(len(self.tokens)), key=lambda i: (-sign * self.attributions[i], i))[:k]
        return [(self.tokens[i].strip(), self.attributions[i]) for i in order]


class KServeExplainResponse(WireModel):
    explanations: list[ExplainResponse] = Field(default_factory=list)
