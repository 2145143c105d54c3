"""Binary classification metrics with explicit undefined values (DESIGN.md §3 metrics layout).

Positive class = phishing (y = 1). A prediction is positive when ``p >= threshold``.

Undefined values are ``None``, never a made-up 0 or a warning:

- ``recall`` and ``f1``: None when the set has no positives (``n_pos == 0``).
- ``precision``: None when nothing is predicted positive (``tp + fp == 0``).
  F1 is still defined then (``2tp / (2tp + fp + fn)`` = 0 when there are positives and none found).
- ``fpr``: None when the set has no negatives (phishing-only sources such as Nazario or SmishTank).
- ``roc_auc``: None unless both classes are present.
- ``accuracy``: None on an empty set.

The confusion counts (``tp``, ``fp``, ``tn``, ``fn``) and the ``threshold`` are returned as well, so
aggregates can be recomputed and readers know which operating point the numbers describe.
All values are plain Python ``int`` / ``float`` / ``None`` (JSON-serialisable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

METRIC_KEYS = ("f1", "precision", "recall", "roc_auc", "fpr", "accuracy", "n", "n_pos", "n_neg")


def _ratio(num: int, den: int) -> float | None:
    return float(num) / float(den) if den > 0 else None


def roc_auc(y_true: np.ndarray, p: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tie correction); None unless both classes present."""
    y_true = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=float)
    n_pos = int(y_true.sum())
    n_neg = int(y_true.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    # average ranks handle ties exactly like sklearn.metrics.roc_auc_score
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    ranks = np.empty(p.size, dtype=float)
    # positions of runs of equal values
    boundaries = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [p.size]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_metrics(
    y_true: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """Metrics of scores ``p`` (P(phishing)) against labels ``y_true`` (1 = phishing) at ``threshold``.

    Keys: f1, precision, recall, roc_auc, fpr, accuracy, n, n_pos, n_neg, tp, fp, tn, fn, threshold.
    See the module docstring for when a value is None.
    """
    y = np.asarray(y_true)
    s = np.asarray(p, dtype=float)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"y_true and p must be 1-d and the same length, got {y.shape} and {s.shape}")
    if s.size and not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    y = y.astype(int)
    pred = s >= threshold
    pos = y == 1
    tp = int(np.sum(pred & pos))
    fp = int(np.sum(pred & ~pos))
    fn = int(np.sum(~pred & pos))
    tn = int(np.sum(~pred & ~pos))
    out = metrics_from_counts(tp, fp, tn, fn, threshold)
    out["roc_auc"] = roc_auc(y, s)
    return out


def metrics_from_counts(tp: int, fp: int, tn: int, fn: int, threshold: float) -> dict[str, Any]:
    """The same dict as :func:`binary_metrics` from confusion counts alone; ``roc_auc`` is None
    (needs scores).

    Used to pool per-source results (e.g. from a bundle manifest) without rescoring.
    """
    tp, fp, tn, fn = int(tp), int(fp), int(tn), int(fn)
    n_pos, n_neg = tp + fn, fp + tn
    n = n_pos + n_neg
    return {
        "f1": _ratio(2 * tp, 2 * tp + fp + fn) if n_pos > 0 else None,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, n_pos),
        "roc_auc": None,
        "fpr": _ratio(fp, n_neg),
        "accuracy": _ratio(tp + tn, n),
        "n": n,
        "n_pos": n_pos,
        "n_neg": n_neg,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "threshold": float(threshold),
    }
