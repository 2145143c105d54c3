"""Prometheus metrics in one place (STYLE.md H11).

Each `Metrics` owns its `CollectorRegistry`, so several apps (tests) never collide. Labels are bounded:
route templates (never raw paths), status codes, adapter names that the registry has loaded (series are
dropped when an adapter is unloaded) and the two labels. Request text never becomes a label or a value.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .middleware import ResponseStatus

SKIP_PATHS = frozenset({"/metrics", "/health"})
LABELS = ("phishing", "legitimate")


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "phishlens_requests_total",
            "HTTP requests by route template and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "phishlens_request_latency_seconds",
            "HTTP request latency by route template",
            ["route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.classifications = Counter(
            "phishlens_classifications_total", "Served classifications", ["adapter", "label"], registry=r
        )
        self.score = Histogram(
            "phishlens_score",
            "Served P(phishing) per adapter",
            ["adapter"],
            registry=r,
            buckets=tuple(round(i / 10, 1) for i in range(1, 11)),
        )
        self.adapters_loaded = Gauge("phishlens_adapters_loaded", "Adapters currently loaded", registry=r)
        self.inflight_texts = Gauge(
            "phishlens_inflight_texts", "Texts admitted and not yet answered", registry=r
        )
        # explanations (services/explain.py): their own series, never the classification ones above
        self.explain_latency = Histogram(
            "phishlens_explain_latency_seconds",
            "Time to compute one explanation",
            ["granularity"],
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
        )
        self.explain_evaluations = Histogram(
            "phishlens_explain_evaluations",
            "Unique texts scored per explanation",
            registry=r,
            buckets=(10, 25, 50, 100, 200, 300, 500, 1000, 2000),
        )
        self.explain_inflight = Gauge("phishlens_explain_inflight", "Explanations running", registry=r)
        self.explain_tokens = Counter(
            "phishlens_explain_tokens_total",
            "Prompt tokens of scored perturbations "
            "(kind=prompt) and tokens the prefix-tree engine ran through the model "
            "(kind=computed; the rest reused cached prefixes)",
            ["engine", "kind"],
            registry=r,
        )
        self.malloc_trim_released = Counter(
            "phishlens_malloc_trim_released_bytes",
            "Resident bytes the periodic malloc_trim handed back to the OS (server/memory.py)",
            registry=r,
        )
        self.forget_hooks: list[Callable[[str], None]] = []  # more per-adapter series owners (drift monitor)
        # performance (services/feedback.py): CBPE from served probabilities, and true labels from feedback
        self.expected_precision = Gauge(
            "phishlens_expected_precision",
            "Label-free (CBPE) precision estimate over the last served verdicts",
            ["adapter"],
            registry=r,
        )
        self.expected_recall = Gauge(
            "phishlens_expected_recall",
            "Label-free (CBPE) recall estimate over the last served verdicts",
            ["adapter"],
            registry=r,
        )
        self.expected_window_texts = Gauge(
            "phishlens_expected_window_texts", "Served verdicts in the CBPE window", ["adapter"], registry=r
        )
        self.feedback = Counter(
            "phishlens_feedback_total",
            "True labels received, by confusion cell",
            ["adapter", "outcome"],
            registry=r,
        )
        self.live_precision = Gauge(
            "phishlens_live_precision", "Precision over the last labelled verdicts", ["adapter"], registry=r
        )
        self.live_recall = Gauge(
            "phishlens_live_recall", "Recall over the last labelled verdicts", ["adapter"], registry=r
        )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def observe_classification(self, adapter: str, label: str, score: float) -> None:
        self.classifications.labels(adapter=adapter, label=label).inc()
        self.score.labels(adapter=adapter).observe(score)

    def forget_adapter(self, adapter: str) -> None:
        """Drop an unloaded adapter's series so label cardinality stays bounded by the loaded set."""
        for hook in list(self.forget_hooks):
            hook(adapter)
        for label in LABELS:
            try:
                self.classifications.remove(adapter, label)
            except KeyError:
                pass
        try:
            self.score.remove(adapter)
        except KeyError:
            pass
        for gauge in (
            self.expected_precision,
            self.expected_recall,
            self.expected_window_texts,
            self.live_precision,
            self.live_recall,
        ):
            try:
                gauge.remove(adapter)
            except KeyError:
                pass
        for outcome in ("tp", "fp", "tn", "fn"):
            try:
                self.feedback.remove(adapter, outcome)
            except KeyError:
                pass

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: count and time every request except /metrics and /health."""

    def __init__(self, app: Callable[..., Any], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http" or scope.get("path") in SKIP_PATHS:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = ResponseStatus(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(template, sent.status or 500, time.perf_counter() - start)
