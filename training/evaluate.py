"""Evaluation by source and style, and the cross-domain matrix (DESIGN.md §3 metrics layout, §8).

A model is anything that maps texts to P(phishing): a :data:`Scorer`. :func:`evaluate_scorer`
scores a fixed per-source sample of the test split once and aggregates it three ways:

- ``by_source.<source>`` — every evaluated source;
- ``test.<style>`` — the sources of that style the model was trained on (its *seen* sources);
- ``unseen.<source>`` — the sources it never saw (held-out corpora, other styles).

:class:`CrossDomainMatrix` puts several models side by side (rows) over domains (columns: the
all-sources aggregate of each style, then each source) and writes JSON, Markdown and a PNG heatmap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from .metrics import binary_metrics, metrics_from_counts
from .records import STYLES, Record

if TYPE_CHECKING:  # pragma: no cover
    from .splits import SplitSet

Scorer = Callable[[list[str]], np.ndarray]
"""Maps texts to P(phishing), one float in [0, 1] per text (shape ``(n_texts,)``)."""

Seen = Literal["seen", "unseen", "partial"]

SOURCE_ORDER = (
    "email_spamassassin", "email_lingspam", "email_nazario_classic", "email_nazario_recent",
    "email_greco_human", "email_greco_llm", "email_llm_multigen",
    "sms_uci", "sms_smishtank", "sms_exais",
    "url_phishtank_iscx", "url_hannousse", "url_spamassassin_ham", "url_top_sites",
)


@runtime_checkable
class ThresholdedScorer(Protocol):
    """A scorer that carries its own decision threshold (e.g. :class:`~phishlens.training.tfidf.TfidfPeer`)."""

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


def eval_sets(splits: "SplitSet", per_label: int = 150, seed: int = 13) -> dict[str, list[Record]]:
    """Per source, a deterministic stratified sample of its TEST split, capped at ``per_label`` rows per label.

    The cap keeps LLM scoring affordable on CPU (≈20-60 ms per text on 2 cores). Sources with no test
    rows and supplementary training-only sources (``SourceInfo.supplementary``) are left out. Keys are in
    display order.
    """
    from .corpora import SOURCES

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
        chunk = unique[start:start + batch_size]
        out = np.asarray(scorer(chunk), dtype=float).reshape(-1)
        if out.shape[0] != len(chunk):
            raise ValueError(f"scorer returned {out.shape[0]} scores for {len(chunk)} texts")
        if not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0.0 or out.max(initial=0.0) > 1.0:
            raise ValueError("scorer must return finite probabilities in [0, 1]")
        scores[start:start + len(chunk)] = out
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
    def from_dict(cls, metrics: Mapping[str, Any], seen_sources: Collection[str],
                  threshold: float | None = None) -> "EvalReport":
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
        return cls(threshold=float(threshold), seen_sources=tuple(sort_sources(seen)), by_source=by_source,
                   test=test, unseen=unseen, style_all=style_all)

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


def evaluate_scorer(scorer: Scorer, threshold: float, sets: Mapping[str, list[Record]],
                    seen_sources: Collection[str], *, batch_size: int = 64, progress: Any = None) -> EvalReport:
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
    by_source = {src: binary_metrics(y_all[slice(*spans[src])], p_all[slice(*spans[src])], threshold)
                 for src in sources}
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
    return EvalReport(threshold=float(threshold), seen_sources=tuple(sort_sources(seen)),
                      by_source=by_source, test=test, unseen=unseen, style_all=style_all)


# ---------------------------------------------------------------------------------------------------
# Cross-domain matrix

_MARK = {"seen": "", "unseen": "*", "partial": "~"}
LOWER_IS_BETTER = frozenset({"fpr"})


@dataclass
class MatrixRow:
    """One model: its name, base architecture (or ``tfidf``), kind and evaluation."""

    name: str
    architecture: str
    report: EvalReport
    kind: str = "lora"

    @property
    def label(self) -> str:
        return f"{self.name} [{self.architecture}]"


@dataclass
class Cell:
    value: float | None
    seen: Seen
    metrics: dict[str, Any]


@dataclass
class CrossDomainMatrix:
    """Rows = models, columns = domains (style aggregates, then sources), cells = a metric (F1 by default).

    Each cell keeps the full metrics and a flag saying whether the row's training mix saw that domain
    (``seen``), did not (``unseen``) or saw some of its sources (``partial``, style columns only).
    """

    rows: list[MatrixRow] = field(default_factory=list)
    metric: str = "f1"

    def add(self, name: str, report: EvalReport, architecture: str, kind: str = "lora") -> MatrixRow:
        row = MatrixRow(name=name, architecture=architecture, report=report, kind=kind)
        if any(r.label == row.label for r in self.rows):
            raise ValueError(f"duplicate row {row.label!r}")
        self.rows.append(row)
        return row

    @property
    def columns(self) -> list[str]:
        styles = [s for s in STYLES if any(s in r.report.style_all for r in self.rows)]
        sources = sort_sources(src for r in self.rows for src in r.report.by_source)
        return styles + sources

    def cell(self, row: MatrixRow | str, column: str, metric: str | None = None) -> Cell | None:
        """The cell of ``row`` (label or name) and ``column``; None when that row did not evaluate it."""
        r = row if isinstance(row, MatrixRow) else self._row(row)
        m = r.report.domains().get(column)
        if m is None:
            return None
        v = m.get(metric or self.metric)
        return Cell(value=None if v is None else float(v), seen=r.report.seen_flags()[column], metrics=m)

    def _row(self, label: str) -> MatrixRow:
        for r in self.rows:
            if label in (r.label, r.name):
                return r
        raise KeyError(label)

    def values(self, metric: str | None = None) -> np.ndarray:
        """``(n_rows, n_columns)`` array of the metric, NaN where undefined or not evaluated."""
        cols = self.columns
        out = np.full((len(self.rows), len(cols)), np.nan)
        for i, r in enumerate(self.rows):
            for j, c in enumerate(cols):
                cell = self.cell(r, c, metric)
                if cell is not None and cell.value is not None:
                    out[i, j] = cell.value
        return out

    # -- writers ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        cols = self.columns
        rows = []
        for r in self.rows:
            cells = {}
            for c in cols:
                cell = self.cell(r, c)
                if cell is not None:
                    cells[c] = {"value": cell.value, "seen": cell.seen, "metrics": cell.metrics}
            rows.append({"name": r.name, "architecture": r.architecture, "kind": r.kind,
                         "threshold": r.report.threshold, "seen_sources": list(r.report.seen_sources),
                         "cells": cells, "metrics": r.report.to_dict()})
        return {"metric": self.metric, "columns": cols, "rows": rows}

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    def to_markdown(self, metric: str | None = None) -> str:
        """A Markdown table (2 decimals) with seen/unseen marks, an n row and a legend."""
        metric = metric or self.metric
        cols = self.columns
        header = "| model | " + " | ".join(cols) + " |"
        sep = "|---|" + "|".join("---:" for _ in cols) + "|"
        lines = [header, sep]
        for r in self.rows:
            cells = []
            for c in cols:
                cell = self.cell(r, c, metric)
                if cell is None or cell.value is None:
                    cells.append("—" + (_MARK[cell.seen] if cell is not None else ""))
                else:
                    cells.append(f"{cell.value:.2f}{_MARK[cell.seen]}")
            lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
        n_row = []
        for c in cols:
            ns = {(m["n_pos"], m["n_neg"]) for r in self.rows
                  if (m := r.report.domains().get(c)) is not None}
            n_row.append("/".join(map(str, ns.pop())) if len(ns) == 1 else "varies")
        lines.append("| n (pos/neg) | " + " | ".join(n_row) + " |")
        lines += [
            "",
            f"Cells: {metric.upper()} on the test split at each model's own threshold. "
            "`*` = domain unseen in that model's training mix; `~` = style partly seen "
            "(some of its sources held out); no mark = seen; `—` = undefined or not evaluated. "
            "Style columns aggregate all evaluated sources of the style.",
        ]
        return "\n".join(lines) + "\n"

    def to_png(self, path: str | Path, title: str | None = None, metric: str | None = None) -> Path:
        """Heatmap (matplotlib Agg, no global backend change): annotated cells, unseen cells hatched.

        Green is good: the colour scale is reversed for metrics where lower is better (fpr).
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch, Rectangle

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cols = self.columns
        metric = metric or self.metric
        vals = self.values(metric)
        n_r, n_c = vals.shape
        fig = Figure(figsize=(max(6.0, 0.75 * n_c + 3.5), max(3.0, 0.55 * n_r + 2.6)), dpi=120)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        import matplotlib

        cmap_name = "RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn"
        cmap = matplotlib.colormaps[cmap_name].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(vals), cmap=cmap, norm=Normalize(0.0, 1.0), aspect="auto")
        ax.set_xticks(range(n_c))
        ax.set_xticklabels(cols, rotation=50, ha="right", fontsize=8)
        ax.set_yticks(range(n_r))
        ax.set_yticklabels([r.label for r in self.rows], fontsize=8)
        hatch = {"unseen": "///", "partial": ".."}
        for i, r in enumerate(self.rows):
            flags = r.report.seen_flags()
            for j, c in enumerate(cols):
                v = vals[i, j]
                flag = flags.get(c)
                if flag in hatch:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch=hatch[flag],
                                           edgecolor="#222222", linewidth=0.0, alpha=0.7))
                text = "—" if math.isnan(v) else f"{v:.2f}"
                ax.text(j, i, text + (_MARK[flag] if flag else ""), ha="center", va="center",
                        fontsize=7, color="black", fontweight="bold",
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": (1, 1, 1, 0.7), "edgecolor": "none"})
        n_styles = sum(c in STYLES for c in cols)
        if 0 < n_styles < n_c:
            ax.axvline(n_styles - 0.5, color="black", linewidth=1.5)
        cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
        cbar.set_label(metric.upper())
        fig.legend(handles=[Patch(facecolor="white", edgecolor="#333333", hatch="///", label="unseen (*)"),
                            Patch(facecolor="white", edgecolor="#333333", hatch="..", label="partly seen (~)"),
                            Patch(facecolor="#d9d9d9", label="undefined / not evaluated (—)")],
                   loc="lower left", ncol=3, fontsize=7, frameon=False)
        ax.set_title(title or f"Cross-domain {metric.upper()} (test split, own threshold)", fontsize=10)
        fig.tight_layout(rect=(0.0, 0.05, 1.0, 1.0))
        fig.savefig(path)
        return path
