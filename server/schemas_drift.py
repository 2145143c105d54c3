"""Wire models of GET /v1/drift (DESIGN.md §5, §6); built from the monitor's `AdapterDrift` dataclasses."""

from __future__ import annotations

from typing import Literal

from phishlens.explain.drift import TypicalWord
from pydantic import BaseModel, Field

from .services.drift import AdapterDrift, FeatureDrift, Prevalence


class FeatureStat(BaseModel):
    feature: str = Field(description="score, uncertainty, a style feature, or embedding")
    statistic: float = Field(description="PSI against the reference deciles; MMD² for feature=embedding; both "
                                               "against the reference reweighted to the window's prevalence")
    threshold: float = Field(description="calibrated on reference data for the target false-alarm rate")
    over: bool
    ks: float | None = Field(default=None, description="two-sample KS statistic (scalar features), no threshold")

    @classmethod
    def of(cls, f: FeatureDrift) -> FeatureStat:
        return cls(feature=f.feature, statistic=f.statistic, threshold=f.threshold, over=f.over, ks=f.ks)


class WordShift(BaseModel):
    word: str
    live_share: float = Field(description="share of live texts in the window containing the word")
    reference_share: float
    log_odds: float = Field(description="> 0: typical of live traffic; < 0: typical of the reference")

    @classmethod
    def of(cls, w: TypicalWord) -> WordShift:
        return cls(word=w.word, live_share=w.live_share, reference_share=w.reference_share, log_odds=w.log_odds)


class PrevalenceInfo(BaseModel):
    estimate: float = Field(description="estimated share of phishing in the window (maximum likelihood from the "
                                        "calibrated scores, Saerens et al. 2002); the drift statistics compare "
                                        "the window with the reference reweighted to it")
    low: float = Field(description="lower end of the 95 % interval")
    high: float = Field(description="upper end of the 95 % interval")
    calibration: float = Field(description="phishing share of the rows the adapter's scores are calibrated on")
    texts: int = Field(description="texts the estimate is based on")

    @classmethod
    def of(cls, p: Prevalence) -> PrevalenceInfo:
        return cls(estimate=p.estimate, low=p.low, high=p.high, calibration=p.calibration, texts=p.texts)


class AdapterDriftInfo(BaseModel):
    adapter: str
    sha256: str
    status: Literal["no_reference", "warming_up", "ok", "drift", "error"]
    alert: bool = Field(description="window full and the drift rule holds (embedding over threshold, or >= 2 "
                                    "scalar features over threshold, against the reference reweighted to the "
                                    "window's prevalence): a generalization failure, not a phishing wave")
    prevalence: PrevalenceInfo | None = Field(default=None, description="the window's estimated phishing "
                                              "prevalence, a signal of its own (null before any text)")
    window_size: int
    window_texts: int
    texts_seen: int
    calibrated_window: int | None = Field(description="window size the thresholds were calibrated for")
    features: list[FeatureStat]
    most_shifted: list[str] = Field(description="features by statistic/threshold, those over threshold first")
    typical_live: list[WordShift] = Field(description="words most typical of live traffic (aggregate counts)")
    typical_reference: list[WordShift] = Field(description="words most typical of the reference")
    evaluated_at: float | None = Field(description="unix time of the last evaluation")
    detail: str = ""

    @classmethod
    def of(cls, d: AdapterDrift) -> AdapterDriftInfo:
        return cls(adapter=d.adapter, sha256=d.sha256, status=d.status, alert=d.alert,  # type: ignore[arg-type]
                   prevalence=PrevalenceInfo.of(d.prevalence) if d.prevalence else None,
                   window_size=d.window_size, window_texts=d.window_texts, texts_seen=d.texts_seen,
                   calibrated_window=d.calibrated_window, features=[FeatureStat.of(f) for f in d.features],
                   most_shifted=d.most_shifted[:5], typical_live=[WordShift.of(w) for w in d.typical_live],
                   typical_reference=[WordShift.of(w) for w in d.typical_reference],
                   evaluated_at=d.evaluated_at, detail=d.detail)


class DriftResponse(BaseModel):
    object: Literal["drift"] = "drift"
    data: list[AdapterDriftInfo]
