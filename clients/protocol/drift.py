"""GET /v1/drift (DESIGN.md §5, §6): the drift monitor's state per loaded adapter."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from .base import Response
from .classify import SHA


class FeatureStat(Response):
    feature: str = Field(description="score, uncertainty, a style feature, or embedding")
    statistic: float = Field(
        description="PSI against the reference deciles; MMD² for feature=embedding; both "
        "against the reference reweighted to the window's prevalence"
    )
    threshold: float = Field(description="calibrated on reference data for the target false-alarm rate")
    over: bool
    ks: float | None = Field(
        default=None, description="two-sample KS statistic (scalar features), no threshold"
    )


class WordShift(Response):
    word: str
    live_share: float = Field(description="share of live texts in the window containing the word")
    reference_share: float
    log_odds: float = Field(description="> 0: typical of live traffic; < 0: typical of the reference")


class PrevalenceInfo(Response):
    estimate: float = Field(
        description="estimated share of phishing in the window (maximum likelihood from the "
        "calibrated scores, Saerens et al. 2002); the drift statistics compare "
        "the window with the reference reweighted to it"
    )
    low: float = Field(description="lower end of the 95 % interval")
    high: float = Field(description="upper end of the 95 % interval")
    calibration: float = Field(
        description="phishing share of the rows the adapter's scores are calibrated on"
    )
    texts: int = Field(description="texts the estimate is based on")


class AdapterDriftInfo(Response):
    """One adapter's drift state."""

    adapter: str
    sha256: str
    status: Literal["no_reference", "warming_up", "ok", "drift", "error"]
    alert: bool = Field(
        description="window full and the drift rule holds (embedding over threshold, or >= 2 "
        "scalar features over threshold, against the reference reweighted to the "
        "window's prevalence): a generalization failure, not a phishing wave"
    )
    prevalence: PrevalenceInfo | None = Field(
        default=None,
        description="the window's estimated phishing prevalence, a signal of its own (null before any text)",
    )
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


class DriftResponse(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "drift",
                    "data": [
                        {
                            "adapter": "default",
                            "sha256": SHA,
                            "status": "drift",
                            "alert": True,
                            "prevalence": {
                                "estimate": 0.31,
                                "low": 0.26,
                                "high": 0.36,
                                "calibration": 0.5,
                                "texts": 500,
                            },
                            "window_size": 500,
                            "window_texts": 500,
                            "texts_seen": 1840,
                            "calibrated_window": 500,
                            "features": [
                                {
                                    "feature": "embedding",
                                    "statistic": 0.041,
                                    "threshold": 0.012,
                                    "over": True,
                                    "ks": None,
                                },
                                {
                                    "feature": "url_count",
                                    "statistic": 0.62,
                                    "threshold": 0.21,
                                    "over": True,
                                    "ks": 0.33,
                                },
                            ],
                            "most_shifted": ["url_count", "embedding"],
                            "typical_live": [
                                {
                                    "word": "invoice",
                                    "live_share": 0.22,
                                    "reference_share": 0.01,
                                    "log_odds": 3.1,
                                }
                            ],
                            "typical_reference": [
                                {"word": "txt", "live_share": 0.0, "reference_share": 0.08, "log_odds": -2.4}
                            ],
                            "evaluated_at": 1795000000.0,
                            "detail": "",
                        }
                    ],
                }
            ]
        }
    )

    object: Literal["drift"] = "drift"
    data: list[AdapterDriftInfo]
