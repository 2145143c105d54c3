"""Live drift monitor, the worker (DESIGN.md §6): a `ClassificationObserver` comparing, per adapter, a sliding
window of served traffic with the adapter's bundled reference profile (`explain.reference`).

`observe` runs on the event loop and only enqueues (a bounded queue; a full queue drops the texts and
counts them, so classification never waits on monitoring). One worker thread computes style features,
MiniLM embeddings (once per text, shared by the adapters of a request), updates the windows, observes
the per-text histograms and, every `drift_eval_every` texts, recomputes the statistics and gauges.

Two signals, kept apart (README "Drift"): the window's phishing prevalence, estimated from the calibrated
scores (explain.prior; a phishing wave is news, not a failure), and drift proper: every statistic compares
the window with the reference reweighted to that prevalence, so only a change in what the texts of each
class look like (a new style or source: a generalization failure) raises `alert`.

The window keeps numbers only (features, scores, embeddings) and decayed word document frequencies;
texts are dropped as soon as their features are computed. Windows are persisted atomically per adapter
(`<state dir>/<adapter>.safetensors`, keyed by the bundle sha256: state from another bundle version is
discarded) on a timer and at shutdown (`.window`); the statistics of a window are computed in
`.statistics`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.explain import drift as D
from phishlens.explain.ood import ood_scores
from phishlens.explain.reference import FEATURES, SCALAR_FEATURES, ReferenceError, ReferenceProfile
from phishlens.explain.style import style_matrix, words
from phishlens.training.contract.style import STYLES

from ...registry import AdapterRegistry
from ...settings import Settings
from ..classify import ClassifyOutcome
from ..drift_metrics import DriftMetrics
from .report import AdapterDrift
from .statistics import evaluate
from .window import LiveWindow

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    texts: Sequence[str]
    per_adapter: dict[str, tuple[str, Path | None, list[int], list[float]]]  # name → (sha, ref, idx, p)
    embeddings: Mapping[int, np.ndarray] = field(default_factory=dict)  # max_tokens → [n, dim], from OOD


def _background_priority() -> None:
    """Make the calling (worker) thread yield to serving: a higher nice value (Linux threads have their own)
    and one torch thread (the OpenMP thread count is per calling thread), so MiniLM runs on spare CPU
    instead of slowing /v1/classify; when there is none, the queue fills and texts are dropped and counted."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


class DriftMonitor:
    """Per-adapter drift windows fed by served classifications (see module docstring)."""

    def __init__(
        self,
        settings: Settings,
        registry: AdapterRegistry,
        metrics: DriftMetrics,
        embedder: object | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.size = settings.drift_window
        self.eval_every = settings.drift_eval_every
        self.state_dir = Path(settings.drift_state_dir).expanduser()
        self._embedder = embedder  # injectable (tests); else MiniLM, loaded on first need
        self._embedders: dict[int, Any] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=settings.drift_queue)
        self._lock = threading.RLock()
        self._windows: dict[str, LiveWindow] = {}
        self._thread: threading.Thread | None = None
        self._pending = 0  # jobs enqueued and not yet processed (for flush)
        self._idle = threading.Condition()  # guards _pending only: observe never waits on the window lock
        self.dropped = 0

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the worker (after the queued jobs) and persist every window."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(60)
            self._thread = None
        self.persist()

    def flush(self, timeout: float = 60.0, evaluate: bool = True) -> bool:
        """Wait until every queued job is processed; then (by default) evaluate all windows now."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._idle.wait(left):
                    return False
        if not evaluate:
            return True
        with self._lock:
            for w in self._windows.values():
                if w.ref is not None:
                    self._evaluate(w)
        return True

    # -- observer (event loop) --------------------------------------------------------------------------
    def observe(self, texts: Sequence[str], outcome: ClassifyOutcome) -> None:
        per: dict[str, tuple[str, Path | None, list[int], list[float]]] = {}
        for r in outcome.results:
            if r.style in STYLES:  # bounded label: the pipeline's three styles
                self.metrics.style_texts.labels(adapter=r.adapter, style=r.style).inc()
            if r.adapter not in per:
                per[r.adapter] = (r.adapter_sha256, self._reference_path(r.adapter, r.adapter_sha256), [], [])
            per[r.adapter][2].append(r.index)
            per[r.adapter][3].append(r.p_phishing)
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(_Job(list(texts), per, outcome.embeddings))
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self.dropped += len(texts)
            self.metrics.dropped.inc(len(texts))

    def _reference_path(self, name: str, sha: str) -> Path | None:
        try:
            entry = self.registry.get(name)
        except Exception:  # noqa: BLE001 - unloaded meanwhile
            return None
        fname = entry.manifest.extras.get("reference")
        if entry.sha256 != sha or not fname:
            return None
        return entry.bundle.path / Path(fname).name

    def forget(self, adapter: str) -> None:
        """The adapter was unloaded: persist and drop its window, remove its series."""
        with self._lock:
            w = self._windows.pop(adapter, None)
            if w is not None and w.ref is not None:
                self._save(w)
            self.metrics.forget(adapter)

    # -- worker -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        _background_priority()
        last_save = time.monotonic()
        while True:
            try:
                job = self._queue.get(timeout=1.0)
            except queue.Empty:
                job = False  # type: ignore[assignment]
            if job is None:
                return
            if job:
                try:
                    self._process(job)
                except Exception:
                    logger.exception("drift monitor failed on a job")
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
            if time.monotonic() - last_save >= self.settings.drift_persist_s:
                self.persist()
                last_save = time.monotonic()

    def _process(self, job: _Job) -> None:
        windows = {name: self._window(name, sha, ref) for name, (sha, ref, _, _) in job.per_adapter.items()}
        live = {n: w for n, w in windows.items() if w is not None and w.ref is not None}
        if not live:
            return
        texts = job.texts
        style = style_matrix(texts)
        bags = [words(t) for t in texts]
        embs: dict[int, np.ndarray] = {}  # by the reference's embedding max_tokens (one pass per setting)
        for w in live.values():
            e = w.ref.embedding  # type: ignore[union-attr]
            if e is not None and e.max_tokens not in embs:
                given = job.embeddings.get(e.max_tokens) if self._embedder is None else None
                # the request path's OOD flag embedded these texts already (same model and truncation)
                embs[e.max_tokens] = (
                    given
                    if given is not None and len(given) == len(texts)
                    else self._embed(texts, e.max_tokens)
                )
        del texts  # the texts go no further than this point
        for name, w in live.items():
            _, _, idx, ps = job.per_adapter[name]
            p = np.asarray(ps, dtype=np.float64)
            rows = np.hstack([p[:, None], D.binary_entropy(p)[:, None], style[idx]])
            e = w.ref.embedding  # type: ignore[union-attr]
            emb = embs[e.max_tokens][idx] if e is not None else None
            with self._lock:
                if self._windows.get(name) is not w:  # unloaded while we computed
                    continue
                self._add(w, rows, emb, [bags[i] for i in idx])

    def _add(self, w: LiveWindow, rows: np.ndarray, emb: np.ndarray | None, bags: list[set[str]]) -> None:
        ref = w.ref
        assert ref is not None
        for j, f in enumerate(SCALAR_FEATURES):
            hist = self.metrics.feature_quantile.labels(adapter=w.name, feature=f)
            for u in D.reference_quantile_mixture(rows[:, j], ref.features[f].sorted, w.prior, w.rng):
                hist.observe(float(u))
        if emb is not None and ref.embedding is not None:
            hist = self.metrics.ood_score.labels(adapter=w.name)
            for s in ood_scores(emb, ref.embedding):  # the same score /v1/classify results carry as `ood`
                hist.observe(float(s))
        w.add(rows, emb, bags)
        self.metrics.window_texts.labels(adapter=w.name).set(len(w.scalars))
        if w.since_eval >= self.eval_every or (
            len(w.scalars) == self.size and w.report is not None and w.report.status == "warming_up"
        ):
            self._evaluate(w)

    def _embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        if self._embedder is not None:
            return np.asarray(self._embedder(texts), dtype=np.float32)  # type: ignore[operator]
        if max_tokens not in self._embedders:
            from phishlens.explain.embed import Embedder

            self._embedders[max_tokens] = Embedder(max_tokens=max_tokens)  # as the reference was embedded
        return self._embedders[max_tokens](texts)

    def _window(self, name: str, sha: str, ref_path: Path | None) -> LiveWindow | None:
        with self._lock:
            w = self._windows.get(name)
            if w is not None and w.sha == sha:
                return w
            try:
                entry = self.registry.get(name)
            except Exception:  # noqa: BLE001 - unloaded before the job ran
                return None
            if entry.sha256 != sha:
                return None
            ref = None
            detail = ""
            if ref_path is not None:
                try:
                    ref = ReferenceProfile.load(ref_path)
                except ReferenceError as e:
                    detail = str(e)
                    logger.warning("adapter %s: %s", name, e)
            w = LiveWindow(name, sha, ref, self.size, seed=len(self._windows))
            if ref is None:
                w.report = AdapterDrift(
                    name,
                    sha,
                    "no_reference",
                    self.size,
                    detail=detail
                    or "the bundle has no reference profile (phishlens augment BUNDLE --only reference)",
                )
            else:
                w.restore(self._state_path(name))
                self._evaluate(w)
            self._windows[name] = w
            return w

    def _evaluate(self, w: LiveWindow) -> None:
        w.since_eval = 0
        w.report, thr = evaluate(w, self.size)
        self._publish(w.name, w.report, thr)

    def _publish(self, name: str, report: AdapterDrift, thr: dict[str, float]) -> None:
        m = self.metrics
        for f in report.features:
            m.statistic.labels(adapter=name, feature=f.feature).set(f.statistic)
        for f in FEATURES:
            if f in thr:
                m.threshold.labels(adapter=name, feature=f).set(thr[f])
        m.alert.labels(adapter=name).set(1.0 if report.alert else 0.0)
        if report.prevalence is not None:
            m.prevalence.labels(adapter=name).set(report.prevalence.estimate)
            m.prevalence_low.labels(adapter=name).set(report.prevalence.low)
            m.prevalence_high.labels(adapter=name).set(report.prevalence.high)
        m.window_texts.labels(adapter=name).set(report.window_texts)

    # -- persistence ------------------------------------------------------------------------------------
    def _state_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.safetensors"  # names match the registry's NAME_RE: safe file names

    def _save(self, w: LiveWindow) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            w.save(self._state_path(w.name))
        except OSError as e:
            logger.warning("cannot persist drift state for %s: %s", w.name, e)

    def persist(self) -> None:
        with self._lock:
            for w in self._windows.values():
                if w.ref is not None:
                    self._save(w)

    # -- report -----------------------------------------------------------------------------------------
    def report(self) -> list[AdapterDrift]:
        """One entry per loaded adapter (loads references and restores state for adapters not seen yet)."""
        out = []
        for entry in self.registry.list():
            fname = entry.manifest.extras.get("reference")
            ref_path = entry.bundle.path / Path(fname).name if fname else None
            w = self._window(entry.name, entry.sha256, ref_path)
            if w is not None and w.report is not None:
                # statistics are as of the last evaluation (every `eval_every` texts); the counts are live
                out.append(
                    w.report
                    if w.ref is None
                    else replace(w.report, window_texts=len(w.scalars), texts_seen=w.texts_seen)
                )
        return out
