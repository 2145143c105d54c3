"""Prometheus series of the drift monitor (DESIGN.md §6), registered on the app's `Metrics.registry`.

Labels are bounded: `adapter` is a loaded adapter (series are removed when it is unloaded) and `feature`
comes from the fixed list `explain.reference.FEATURES`. Names are a contract with deploy/ (alert rules,
dashboards): change them together.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from phishlens.explain.reference import FEATURES, SCALAR_FEATURES
from phishlens.training.contract.style import STYLES

QUANTILE_BUCKETS = tuple(round(i / 10, 1) for i in range(1, 11))
OOD_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.statistic = Gauge(
            "phishlens_drift_statistic",
            "Drift statistic of the live window vs the reference "
            "(PSI for scalar features, MMD² for feature=embedding)",
            ["adapter", "feature"],
            registry=r,
        )
        self.threshold = Gauge(
            "phishlens_drift_threshold",
            "Calibrated threshold of phishlens_drift_statistic",
            ["adapter", "feature"],
            registry=r,
        )
        self.alert = Gauge(
            "phishlens_drift_alert",
            "1 when the window is full and the drift rule holds "
            "(embedding over threshold, or >= 2 scalar features over threshold)",
            ["adapter"],
            registry=r,
        )
        self.prevalence = Gauge(
            "phishlens_drift_prevalence",
            "Estimated phishing prevalence of the drift window "
            "(maximum likelihood from calibrated scores; the reference is reweighted to it)",
            ["adapter"],
            registry=r,
        )
        self.prevalence_low = Gauge(
            "phishlens_drift_prevalence_low",
            "Lower end of the 95 % interval of phishlens_drift_prevalence",
            ["adapter"],
            registry=r,
        )
        self.prevalence_high = Gauge(
            "phishlens_drift_prevalence_high",
            "Upper end of the 95 % interval of phishlens_drift_prevalence",
            ["adapter"],
            registry=r,
        )
        self.window_texts = Gauge(
            "phishlens_drift_window_texts", "Texts in the current drift window", ["adapter"], registry=r
        )
        self.feature_quantile = Histogram(
            "phishlens_drift_feature_quantile",
            "Each live text's feature value as "
            "a quantile of the reference distribution (uniform when in distribution)",
            ["adapter", "feature"],
            buckets=QUANTILE_BUCKETS,
            registry=r,
        )
        self.ood_score = Histogram(
            "phishlens_ood_score",
            "Per-text embedding kNN distance to the reference, 1.0 = the reference's own 99th percentile",
            ["adapter"],
            buckets=OOD_BUCKETS,
            registry=r,
        )
        self.style_texts = Counter(
            "phishlens_drift_texts_total",
            "Served texts per adapter and style as the "
            "input pipeline saw it (given or detected): a shift of styles is the first sign "
            "of traffic an adapter was not trained on",
            ["adapter", "style"],
            registry=r,
        )
        self.dropped = Counter(
            "phishlens_drift_dropped_texts_total",
            "Texts the drift monitor skipped because its queue was full",
            registry=r,
        )

    def forget(self, adapter: str) -> None:
        """Drop every series of an unloaded adapter."""
        for m in (
            self.alert,
            self.window_texts,
            self.ood_score,
            self.prevalence,
            self.prevalence_low,
            self.prevalence_high,
        ):
            _remove(m, adapter)
        for f in FEATURES:
            _remove(self.statistic, adapter, f)
            _remove(self.threshold, adapter, f)
        for f in SCALAR_FEATURES:
            _remove(self.feature_quantile, adapter, f)
        for style in STYLES:
            _remove(self.style_texts, adapter, style)


def _remove(metric: Gauge | Histogram | Counter, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass
