"""The drift state of an adapter as `/v1/drift` reports it (typed results; server/wire.py shapes them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from phishlens.explain import drift as D
from phishlens.explain.prior import PriorEstimate


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    statistic: float  # the feature's statistic (explain.drift_stats: PSI for scalars, MMD² for the embedding)
    threshold: float
    over: bool
    ks: float | None = None  # two-sample KS statistic (scalar features), for reading only


@dataclass(frozen=True)
class Prevalence:
    """The window's estimated phishing prevalence (explain.prior) and the prior the scores are calibrated
    at."""

    estimate: float
    low: float  # 95 % interval
    high: float
    calibration: float  # phishing share of the adapter's calibration rows
    texts: int  # texts it is estimated from

    @classmethod
    def of(cls, e: PriorEstimate, calibration: float) -> Prevalence:
        return cls(e.estimate, e.low, e.high, calibration, e.n)


@dataclass(frozen=True)
class AdapterDrift:
    """The drift state of one adapter as last evaluated."""

    adapter: str
    sha256: str
    status: str  # "no_reference" | "warming_up" (window not full) | "ok" | "drift" | "error"
    window_size: int
    window_texts: int = 0
    texts_seen: int = 0
    calibrated_window: int | None = None
    alert: bool = False
    features: list[FeatureDrift] = field(default_factory=list)
    prevalence: Prevalence | None = None  # the reference is reweighted to `prevalence.estimate`
    most_shifted: list[str] = field(default_factory=list)  # features by statistic / threshold, over first
    typical_live: list[D.TypicalWord] = field(default_factory=list)
    typical_reference: list[D.TypicalWord] = field(default_factory=list)
    evaluated_at: float | None = None
    detail: str = ""
