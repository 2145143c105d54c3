"""Explanations: SHAP through the serving backend, with its own admission limit and metrics (DESIGN.md §5).

shap runs in a worker thread (`phishlens.explain.attribute`); each of its rounds is encoded there and
bridged to the event loop with `asyncio.run_coroutine_threadsafe` as ONE `backend.score` call, so vLLM
schedules a round's perturbations together (and its prefix cache shares the template prefix).
This path never goes through `ClassifyService.classify`: explain traffic stays out of the
classification counters, the observers (drift, feedback) and the text queue; it uses the same
encoding + `backend.score` + `calibrate` steps as the golden self-test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from phishlens.explain.attribution import (
    Attribution,
    AttributionError,
    Granularity,
    TooManyFeatures,
    attribute,
)

from ..backends.base import Backend, BackendError, ScoreRequest
from ..errors import BackendFailure, Overloaded, PayloadTooLarge, ValidationFailed
from ..metrics import Metrics
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .classify import calibrate

logger = logging.getLogger(__name__)
_warm_lock = threading.Lock()
_warmed = False


class _Cancelled(Exception):
    """The request went away: stop scoring at the next round."""


@dataclass(frozen=True)
class ExplainOutcome:
    id: str
    adapter: str
    adapter_sha256: str
    label: str
    uncertain: bool
    truncated: bool  # the explained text was longer than the adapter's window (head + tail kept)
    attribution: Attribution
    seconds: float


def warm_up_once() -> None:
    """Import shap and compile its numba kernels once per process (the first explanation would pay ≈20 s)."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        try:
            from phishlens.explain.attribution import warm_up

            logger.info("explain warm-up done in %.1fs", warm_up())
        except Exception:  # noqa: BLE001 - a failed warm-up only costs the first request time
            logger.exception("explain warm-up failed")
        _warmed = True


class ExplainService:
    def __init__(self, backend: Backend, registry: AdapterRegistry, settings: Settings,
                 metrics: Metrics | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.running = 0  # explanations admitted (single event loop: no lock needed)

    def start_warm_up(self) -> None:
        threading.Thread(target=warm_up_once, name="phishlens-explain-warmup", daemon=True).start()

    def budget(self, max_evals: int | None) -> int:
        s = self.settings
        if max_evals is None:
            return min(s.explain_default_max_evals, s.explain_max_evals)
        if max_evals > s.explain_max_evals:
            raise ValidationFailed(f"max_evals={max_evals} is over this server's cap of "
                                   f"{s.explain_max_evals}")
        return max_evals

    async def explain(self, text: str, adapter: str | None = None, *, granularity: Granularity = "word",
                      max_evals: int | None = None) -> ExplainOutcome:
        """Attributions of one text through one adapter; 429 past `explain_concurrency` running at once."""
        if len(text) > self.settings.max_chars:
            raise PayloadTooLarge(f"input has {len(text)} characters; the limit is {self.settings.max_chars}")
        budget = self.budget(max_evals)
        if self.running >= self.settings.explain_concurrency:
            raise Overloaded(f"{self.running} explanations running "
                             f"(limit {self.settings.explain_concurrency}); retry shortly")
        self._admit(1)
        cancelled = threading.Event()
        start = time.perf_counter()
        try:
            with self.registry.lease([adapter]) as (entry,):
                score = self._bridge(entry, asyncio.get_running_loop(), cancelled)
                try:
                    attr = await asyncio.to_thread(
                        attribute, score, text, entry.encoder.tokenizer, granularity=granularity,
                        max_evals=budget, round_nodes=self.settings.explain_round_nodes,
                        max_features=self.settings.explain_max_features)
                except asyncio.CancelledError:
                    cancelled.set()  # the worker stops at its next round
                    raise
                except TooManyFeatures as e:
                    raise PayloadTooLarge(str(e)) from e
                except AttributionError as e:
                    raise ValidationFailed(str(e)) from e
                except BackendError as e:
                    raise BackendFailure(f"inference engine failed: {e}") from e
                cal = entry.manifest.calibration
                truncated = entry.encoder.encode(attr.masked_text).truncated
        finally:
            self._admit(-1)
        seconds = time.perf_counter() - start
        if self.metrics:
            self.metrics.explain_latency.labels(granularity=granularity).observe(seconds)
            self.metrics.explain_evaluations.observe(attr.evaluations)
        p = attr.prediction
        return ExplainOutcome(f"exp-{uuid.uuid4().hex}", entry.name, entry.sha256,
                              "phishing" if p >= cal.threshold else "legitimate",
                              cal.uncertain_low <= p <= cal.uncertain_high, truncated, attr, seconds)

    def _bridge(self, entry: AdapterEntry, loop: asyncio.AbstractEventLoop, cancelled: threading.Event):
        """score(texts) for the worker thread: encode here, one backend call on the loop, calibrate."""
        label_ids = entry.manifest.label_token_ids
        cal = entry.manifest.calibration

        def score(texts: Sequence[str]) -> np.ndarray:
            if cancelled.is_set():
                raise _Cancelled()
            encoded = entry.encoder.encode_many(texts)
            requests = [ScoreRequest(enc.ids, entry.handle, label_ids) for enc in encoded]
            results = asyncio.run_coroutine_threadsafe(self.backend.score(requests), loop).result()
            if len(results) != len(requests):
                raise BackendError(f"{len(results)} results for {len(requests)} prompts")
            return np.array([calibrate(r.label_logprobs, cal)[0] for r in results], dtype=np.float64)

        return score

    def _admit(self, delta: int) -> None:
        self.running += delta
        if self.metrics:
            self.metrics.explain_inflight.set(self.running)


def explanation_html(out: ExplainOutcome) -> str:
    """The self-contained HTML page for an outcome (title names the adapter and its verdict)."""
    from phishlens.explain.render import render_html

    a = out.attribution
    return render_html(a.tokens, a.attributions, prediction=a.prediction, base_value=a.base_value,
                       title=f"{out.adapter}: {out.label}",
                       subtitle=f"adapter {out.adapter} ({out.adapter_sha256[:12]}), {a.granularity} SHAP "
                                f"(partition), {a.evaluations} evaluations of {a.max_evals}")
