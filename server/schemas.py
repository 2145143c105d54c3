"""Wire models (pydantic) for the HTTP API (DESIGN.md §5); services return dataclasses, routes convert."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .services.classify import Classification


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_texts(texts: list[str], field: str) -> list[str]:
    if not texts:
        raise ValueError(f"{field} must contain at least one text")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"{field}[{empty[0]}] is empty; every text needs at least one non-space character")
    return texts


class ClassifyRequest(_Request):
    input: str | list[str] = Field(description="one text or a list of texts")
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
        _check_texts(self.texts, "input")
        return self

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)

    @property
    def adapter_names(self) -> list[str | None]:
        return list(self.adapters) if self.adapters is not None else [self.adapter]


class AdapterRef(BaseModel):
    name: str
    sha256: str


class ClassifyResult(BaseModel):
    index: int
    label: Literal["phishing", "legitimate"]
    probs: dict[str, float] = Field(description='{"phishing": p, "legitimate": 1 - p}')
    score: float = Field(description="P(phishing), calibrated")
    uncertain: bool
    truncated: bool
    adapter: AdapterRef

    @classmethod
    def of(cls, c: Classification) -> "ClassifyResult":
        return cls(index=c.index, label=c.label,  # type: ignore[arg-type]
                   probs={"phishing": c.p_phishing, "legitimate": 1.0 - c.p_phishing}, score=c.p_phishing,
                   uncertain=c.uncertain, truncated=c.truncated,
                   adapter=AdapterRef(name=c.adapter, sha256=c.adapter_sha256))


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


class KServePredictRequest(BaseModel):
    instances: list[str | KServeInstance]

    @property
    def texts(self) -> list[str]:
        return [i if isinstance(i, str) else i.text for i in self.instances]

    @model_validator(mode="after")
    def _check(self) -> "KServePredictRequest":
        _check_texts(self.texts, "instances")
        return self


class KServePredictResponse(BaseModel):
    predictions: list[ClassifyResult]


class KServeModel(BaseModel):
    name: str
    ready: bool
    sha256: str
    base_model: str
    platform: str = "phishlens"
