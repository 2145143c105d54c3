"""Evaluation by source and style (DESIGN.md §3 metrics layout, §8); the matrix is in `.matrix`.

A model is anything that maps texts to P(phishing): a :data:`Scorer`. :func:`evaluate_scorer`
scores a fixed per-source sample of the test split once and aggregates it three ways:

- ``by_source.<source>`` — every evaluated source;
- ``test.<style>`` — the sources of that style the model was trained on (its *seen* sources);
- ``unseen.<source>`` — the sources it never saw (held-out corpora, other styles).

:class:`~phishlens.training.evaluation.matrix.CrossDomainMatrix` puts several models side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from phishlens.training.data.corpora import SOURCES
from phishlens.training.data.records import STYLES, Record
from phishlens.training.evaluation.metrics import binary_metrics, metrics_from_counts

if TYPE_CHECKING:  # pragma: no cover
    from phishlens.training.data.splits import SplitSet

Scorer = Callable[[list[str]], np.ndarray]
"""Maps texts to P(phishing), one float in [0, 1] per text (shape ``(n_texts,)``)."""

Seen = Literal["seen", "unseen", "partial"]

SOURCE_ORDER: tuple[str, ...] = tuple(
    SOURCES
)  # display order: the one list of sources (training.data.corpora)


@runtime_checkable
class ThresholdedScorer(Protocol):
    """A scorer that carries its own decision threshold (e.g.
    :class:`~phishlens.training.model.tfidf.TfidfPeer`)."""

    threshold: float

    def __call__(self, texts: list[str]) -> np.ndarray: ...


def style_of(source: str) -> str:
    """The style of a canonical source id: its prefix before the first underscore."""
    style = source.split("_", 1)[0]
    if style not in STYLES:
        raise ValueError(f"source id {source!r} does not start with a style ({', '.join(STYLES)})")
    return style


def _source_key(source: str) -> tuple[int, int, str]:
    style = source.split("_", 1)[0]
    s_idx = STYLES.index(style) if style in STYLES else len(STYLES)
    o_idx = SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)
    return (s_idx, o_idx, source)


def sort_sources(sources: Iterable[str]) -> list[str]:
    """Sources in display order: by style (email, sms, url), then canonical order, then name."""
    return sorted(set(sources), key=_source_key)


def eval_sets(splits: SplitSet, per_label: int = 150, seed: int = 13) -> dict[str, list[Record]]:
    """Per source, a deterministic stratified sample of its TEST split, capped at ``per_label`` rows per
    label.

    The cap keeps LLM scoring affordable on CPU (≈20-60 ms per text on 2 cores). Sources with no test
    rows and supplementary training-only sources (``SourceInfo.supplementary``) are left out. Keys are in
    display order.
    """
    out: dict[str, list[Record]] = {}
    for source in sort_sources(splits.by_source):
        if source in SOURCES and SOURCES[source].supplementary:
            continue
        rows = splits.sample("test", source, per_label, seed=seed)
        if rows:
            out[source] = list(rows)
    return out


def _score_unique(scorer: Scorer, texts: list[str], batch_size: int, progress: Any = None) -> np.ndarray:
    """Score each distinct text once (in batches); returns P(phishing) aligned with ``texts``.

    ``progress``: a tqdm-like bar; its total is set to the distinct texts and it advances per batch.
    """
    index: dict[str, int] = {}
    unique: list[str] = []
    positions = np.empty(len(texts), dtype=np.int64)
    for i, t in enumerate(texts):
        j = index.get(t)
        if j is None:
            j = index[t] = len(unique)
            unique.append(t)
        positions[i] = j
    scores = np.empty(len(unique), dtype=float)
    if progress is not None:
        progress.reset(total=len(unique))
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        out = np.asarray(scorer(chunk), dtype=float).reshape(-1)
        if out.shape[0] != len(chunk):
            raise ValueError(f"scorer returned {out.shape[0]} scores for {len(chunk)} texts")
        if not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0.0 or out.max(initial=0.0) > 1.0:
            raise ValueError("scorer must return finite probabilities in [0, 1]")
        scores[start : start + len(chunk)] = out
        if progress is not None:
            progress.update(len(chunk))
    return scores[positions] if len(texts) else np.empty(0, dtype=float)


@dataclass
class EvalReport:
    """Metrics of one model at one threshold over per-source test samples.

    ``to_dict()`` has exactly the bundle layout ``{"test": {style: m}, "unseen": {source: m},
    "by_source": {source: m}}``. ``style_all`` (the aggregate over *all* evaluated sources of a style,
    seen or not) is kept beside it for the cross-domain matrix.
    """

    threshold: float
    seen_sources: tuple[str, ...]
    by_source: dict[str, dict[str, Any]]
    test: dict[str, dict[str, Any]]
    unseen: dict[str, dict[str, Any]]
    style_all: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test, "unseen": self.unseen, "by_source": self.by_source}

    @classmethod
    def from_dict(
        cls, metrics: Mapping[str, Any], seen_sources: Collection[str], threshold: float | None = None
    ) -> EvalReport:
        """Rebuild a report from its ``to_dict()`` layout (e.g. a bundle's ``metrics``) without rescoring.

        ``style_all`` is taken from ``test.<style>`` where every source of the style was seen, else pooled
        from the per-source confusion counts (then its ``roc_auc`` is None: pooling AUC needs the scores).
        """
        by_source = {k: dict(v) for k, v in metrics.get("by_source", {}).items()}
        test = {k: dict(v) for k, v in metrics.get("test", {}).items()}
        unseen = {k: dict(v) for k, v in metrics.get("unseen", {}).items()}
        if threshold is None:
            threshold = next((float(m["threshold"]) for m in by_source.values() if "threshold" in m), 0.5)
        seen = set(seen_sources)
        style_all: dict[str, dict[str, Any]] = {}
        for style in STYLES:
            srcs = [s for s in sort_sources(by_source) if style_of(s) == style]
            if not srcs:
                continue
            if all(s in seen for s in srcs) and style in test:
                style_all[style] = test[style]
                continue
            counts = [sum(int(by_source[s].get(k, 0)) for s in srcs) for k in ("tp", "fp", "tn", "fn")]
            style_all[style] = {**metrics_from_counts(*counts, threshold), "sources": srcs}
        return cls(
            threshold=float(threshold),
            seen_sources=tuple(sort_sources(seen)),
            by_source=by_source,
            test=test,
            unseen=unseen,
            style_all=style_all,
        )

    def domains(self) -> dict[str, dict[str, Any]]:
        """Column name -> metrics: each style aggregate (all its sources), then each source."""
        out = {s: self.style_all[s] for s in STYLES if s in self.style_all}
        out.update({src: self.by_source[src] for src in sort_sources(self.by_source)})
        return out

    def seen_flags(self) -> dict[str, Seen]:
        """Column name -> whether the model saw that domain in training (``partial``: some sources)."""
        seen = set(self.seen_sources)
        flags: dict[str, Seen] = {}
        for style in STYLES:
            srcs = [s for s in self.by_source if style_of(s) == style]
            if not srcs:
                continue
            k = sum(s in seen for s in srcs)
            flags[style] = "seen" if k == len(srcs) else "unseen" if k == 0 else "partial"
        for src in sort_sources(self.by_source):
            flags[src] = "seen" if src in seen else "unseen"
        return flags


def evaluate_scorer(
    scorer: Scorer,
    threshold: float,
    sets: Mapping[str, list[Record]],
    seen_sources: Collection[str],
    *,
    batch_size: int = 64,
    progress: Any = None,
) -> EvalReport:
    """Score every text in ``sets`` once and report metrics per source, per seen style and per unseen source.

    ``sets`` maps source id -> records (see :func:`eval_sets`); ``seen_sources`` are the sources of the
    model's training mix. A text that appears in several sets (should not happen after de-duplication)
    is still scored only once.
    """
    sources = sort_sources(sets)
    for src in sources:
        style_of(src)  # validates the id
    all_texts: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    for src in sources:
        start = len(all_texts)
        all_texts.extend(r.text for r in sets[src])
        spans[src] = (start, len(all_texts))
    p_all = _score_unique(scorer, all_texts, batch_size, progress)
    y_all = np.fromiter((r.y for src in sources for r in sets[src]), dtype=int, count=len(all_texts))

    def idx(srcs: Iterable[str]) -> np.ndarray:
        parts = [np.arange(*spans[s]) for s in srcs]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def metrics(srcs: list[str]) -> dict[str, Any]:
        i = idx(srcs)
        m = binary_metrics(y_all[i], p_all[i], threshold)
        m["sources"] = list(srcs)
        return m

    seen = set(seen_sources)
    by_source = {
        src: binary_metrics(y_all[slice(*spans[src])], p_all[slice(*spans[src])], threshold)
        for src in sources
    }
    test: dict[str, dict[str, Any]] = {}
    style_all: dict[str, dict[str, Any]] = {}
    for style in STYLES:
        of_style = [s for s in sources if style_of(s) == style]
        if not of_style:
            continue
        style_all[style] = metrics(of_style)
        seen_of_style = [s for s in of_style if s in seen]
        if seen_of_style:
            test[style] = metrics(seen_of_style)
    unseen = {src: by_source[src] for src in sources if src not in seen}
    return EvalReport(
        threshold=float(threshold),
        seen_sources=tuple(sort_sources(seen)),
        by_source=by_source,
        test=test,
        unseen=unseen,
        style_all=style_all,
    )
