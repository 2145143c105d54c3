"""Wire model of `GET /v1/drift` as the client sees it (mirrors server/schemas_drift.py)."""

from __future__ import annotations

from phishlens.clients.types import WireModel


class FeatureStat(WireModel):
    feature: str
    statistic: float  # PSI (scalar features) or MMD² (embedding)
    threshold: float
    over: bool
    ks: float | None = None


class WordShift(WireModel):
    word: str
    live_share: float
    reference_share: float
    log_odds: float  # > 0: typical of live traffic


class Prevalence(WireModel):
    """The window's estimated phishing prevalence with its 95 % interval."""

    estimate: float
    low: float
    high: float
    calibration: float  # phishing share of the rows the adapter's scores are calibrated on
    texts: int


class AdapterDrift(WireModel):
    """One adapter's drift state: `status` is no_reference | warming_up | ok | drift | error."""

    adapter: str
    sha256: str
    status: str
    alert: bool  # drift against the reference reweighted to the prevalence: not raised by a phishing wave
    prevalence: Prevalence | None = None
    window_size: int
    window_texts: int
    texts_seen: int
    calibrated_window: int | None = None
    features: list[FeatureStat] = []
    most_shifted: list[str] = []
    typical_live: list[WordShift] = []
    typical_reference: list[WordShift] = []
    evaluated_at: float | None = None
    detail: str = ""


class DriftResponse(WireModel):
    data: list[AdapterDrift]
