"""The cross-domain matrix (DESIGN.md §3, §8): several models side by side (rows) over domains (columns: the
all-sources aggregate of each style, then each source), written as JSON, Markdown and a PNG heatmap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.training.data.records import STYLES
from phishlens.training.evaluation.report import EvalReport, Seen, sort_sources

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
            rows.append(
                {
                    "name": r.name,
                    "architecture": r.architecture,
                    "kind": r.kind,
                    "threshold": r.report.threshold,
                    "seen_sources": list(r.report.seen_sources),
                    "cells": cells,
                    "metrics": r.report.to_dict(),
                }
            )
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
            ns = {(m["n_pos"], m["n_neg"]) for r in self.rows if (m := r.report.domains().get(c)) is not None}
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
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            fill=False,
                            hatch=hatch[flag],
                            edgecolor="#222222",
                            linewidth=0.0,
                            alpha=0.7,
                        )
                    )
                text = "—" if math.isnan(v) else f"{v:.2f}"
                ax.text(
                    j,
                    i,
                    text + (_MARK[flag] if flag else ""),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black",
                    fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": (1, 1, 1, 0.7), "edgecolor": "none"},
                )
        n_styles = sum(c in STYLES for c in cols)
        if 0 < n_styles < n_c:
            ax.axvline(n_styles - 0.5, color="black", linewidth=1.5)
        cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
        cbar.set_label(metric.upper())
        fig.legend(
            handles=[
                Patch(facecolor="white", edgecolor="#333333", hatch="///", label="unseen (*)"),
                Patch(facecolor="white", edgecolor="#333333", hatch="..", label="partly seen (~)"),
                Patch(facecolor="#d9d9d9", label="undefined / not evaluated (—)"),
            ],
            loc="lower left",
            ncol=3,
            fontsize=7,
            frameon=False,
        )
        ax.set_title(title or f"Cross-domain {metric.upper()} (test split, own threshold)", fontsize=10)
        fig.tight_layout(rect=(0.0, 0.05, 1.0, 1.0))
        fig.savefig(path)
        return path
