"""Drift statistics (DESIGN.md §6): pure numpy functions, shared by the bundle builder and the live monitor.

- PSI over reference deciles for every scalar feature (score, uncertainty, style features); KS as a
  second, threshold-free view.
- Unbiased MMD² with an RBF kernel (median-heuristic bandwidth) between a window of text embeddings and
  the reference embedding sample.
- A per-text out-of-distribution score: mean cosine distance to the k nearest reference embeddings,
  divided by the reference's own leave-one-out 99th percentile (so 1.0 = "as odd as the oddest 1 % of
  the reference").
- Threshold calibration: windows of size W drawn from one half of the reference rows are compared with
  a profile built on the other half, many times; each statistic's threshold is its (1 - alpha/k)
  quantile (Bonferroni over the k statistics), so a window of in-distribution traffic raises any
  statistic with probability <= alpha. Comparing with a half-size reference makes the thresholds a
  little conservative.
- Alert rule (`drift_rule`): the embedding statistic over its threshold, or at least two scalar features
  over theirs. One scalar feature alone never alerts: a single odd feature (one HTML message in an SMS
  stream) is noise more often than a new kind of traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DECILES = np.linspace(0.1, 0.9, 9)
PSI_FLOOR = 0.05  # below this PSI nobody calls a shift a shift (the usual bands: 0.1 moderate, 0.25 major)
SMOOTH = 0.5  # add-half counts per bin: PSI stays finite for empty bins


# ---- scalar features ---------------------------------------------------------------------------------
def decile_edges(ref: np.ndarray) -> np.ndarray:
    """Distinct interior decile cut points of a reference sample (ties collapse: discrete features get fewer
    bins). Bins are (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    return np.unique(np.quantile(np.asarray(ref, dtype=np.float64), DECILES))


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="left")


def bin_props(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Smoothed share of `values` in each of the len(edges)+1 bins."""
    k = len(edges) + 1
    counts = np.bincount(bin_index(values, edges), minlength=k).astype(np.float64)
    return (counts + SMOOTH) / (counts.sum() + SMOOTH * k)


def psi_from_props(live: np.ndarray, ref: np.ndarray) -> float | np.ndarray:
    """Population stability index sum((l - r) ln(l / r)) over the last axis."""
    return np.sum((live - ref) * np.log(live / ref), axis=-1)


def psi(live: np.ndarray, ref_props: np.ndarray, edges: np.ndarray) -> float:
    return float(psi_from_props(bin_props(live, edges), np.asarray(ref_props)))


def ks(live: np.ndarray, ref_sorted: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (max CDF gap)."""
    live = np.sort(np.asarray(live, dtype=np.float64))
    ref_sorted = np.asarray(ref_sorted, dtype=np.float64)
    if len(live) == 0 or len(ref_sorted) == 0:
        return 0.0
    grid = np.concatenate([live, ref_sorted])
    f_live = np.searchsorted(live, grid, side="right") / len(live)
    f_ref = np.searchsorted(ref_sorted, grid, side="right") / len(ref_sorted)
    return float(np.max(np.abs(f_live - f_ref)))


def reference_quantile(values: np.ndarray, ref_sorted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each value's position in the reference CDF, ties broken uniformly at random (randomised PIT), so that
    in-distribution values are uniform on [0, 1] even for discrete features (html=0 for most texts)."""
    values = np.asarray(values, dtype=np.float64)
    lo = np.searchsorted(ref_sorted, values, side="left")
    hi = np.searchsorted(ref_sorted, values, side="right")
    u = (lo + rng.random(len(values)) * (hi - lo)) / max(len(ref_sorted), 1)
    return np.clip(u, 0.0, 1.0)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Uncertainty of a calibrated P(phishing) in bits (0 = sure, 1 = coin toss)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


# ---- embeddings --------------------------------------------------------------------------------------
def rbf_gamma(ref: np.ndarray, max_rows: int = 500) -> float:
    """Median heuristic: gamma = 1 / median squared distance between reference embeddings."""
    x = ref[:max_rows].astype(np.float64)
    d = _sqdist(x, x)[np.triu_indices(len(x), 1)]
    med = float(np.median(d)) if len(d) else 1.0
    return 1.0 / max(med, 1e-6)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    return np.exp(-gamma * _sqdist(a.astype(np.float64), b.astype(np.float64)))


def offdiag_mean(k: np.ndarray) -> float:
    n = k.shape[0]
    return float((k.sum() - np.trace(k)) / (n * (n - 1))) if n > 1 else 0.0


def mmd2(x: np.ndarray, y: np.ndarray, gamma: float, kyy: float | None = None) -> float:
    """Unbiased MMD² between samples x [n, d] and y [m, d]; `kyy` = precomputed off-diagonal mean of K(y, y)."""
    if len(x) < 2 or len(y) < 2:
        return 0.0
    kxx = offdiag_mean(rbf(x, x, gamma))
    kyy = offdiag_mean(rbf(y, y, gamma)) if kyy is None else kyy
    return float(kxx - 2.0 * rbf(x, y, gamma).mean() + kyy)


def knn_distance(x: np.ndarray, ref: np.ndarray, k: int = 5, exclude_self: bool = False) -> np.ndarray:
    """Mean cosine distance from each row of x (unit vectors) to its k nearest reference rows."""
    if len(x) == 0:
        return np.zeros(0)
    d = 1.0 - x.astype(np.float64) @ ref.astype(np.float64).T  # [n, m]
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    k = max(1, min(k, d.shape[1] - (1 if exclude_self else 0)))
    return np.sort(np.partition(d, k - 1, axis=1)[:, :k], axis=1).mean(1)


# ---- calibration -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibrated:
    """Thresholds for one window size and what the simulation measured with them."""

    window: int
    thresholds: dict[str, float]  # feature -> threshold (PSI for scalars, MMD² for "embedding")
    false_alarm_rate: float  # share of simulated in-distribution windows on which `drift_rule` fired
    n_sims: int


def drift_rule(over: Mapping[str, bool]) -> bool:
    """The alert rule: embedding over its threshold, or >= 2 scalar features over theirs."""
    return bool(over.get("embedding", False)) or sum(v for f, v in over.items() if f != "embedding") >= 2


def calibrate(values: np.ndarray, names: Sequence[str], embeddings: np.ndarray | None, windows: Sequence[int],
              alpha: float = 0.01, n_sims: int = 2000, seed: int = 0,
              gamma: float | None = None) -> list[Calibrated]:
    """Thresholds per window size from reference rows `values` [n, F] (+ `embeddings` [n, d]).

    Split-half: windows of W rows drawn with replacement from half H are compared with the profile of the
    other half R. The MMD within-window term skips pairs drawn from the same row, so repeated draws do not
    look like a tight cluster.
    """
    rng = np.random.default_rng(seed)
    n = len(values)
    if n < 20:
        raise ValueError(f"need at least 20 reference rows to calibrate thresholds, got {n}")
    perm = rng.permutation(n)
    r_idx, h_idx = perm[: n // 2], perm[n // 2:]
    feats = list(names)
    k_stats = len(feats) + (1 if embeddings is not None else 0)
    q = 1.0 - alpha / k_stats
    bins_h, ref_props = [], []
    for f in range(len(feats)):
        edges = decile_edges(values[r_idx, f])
        ref_props.append(bin_props(values[r_idx, f], edges))
        bins_h.append(bin_index(values[h_idx, f], edges))
    if embeddings is not None:
        er, eh = embeddings[r_idx], embeddings[h_idx]
        gamma = rbf_gamma(er) if gamma is None else gamma  # pass the served bandwidth: same kernel
        k_hh = rbf(eh, eh, gamma)
        k_hr_mean = rbf(eh, er, gamma).mean(1)
        kyy = offdiag_mean(rbf(er, er, gamma))
    out = []
    for w in windows:
        idx = rng.integers(0, len(h_idx), size=(n_sims, w))
        stats: dict[str, np.ndarray] = {}
        for f, name in enumerate(feats):
            kbins = len(ref_props[f])
            b = bins_h[f][idx] + np.arange(n_sims)[:, None] * kbins
            counts = np.bincount(b.ravel(), minlength=n_sims * kbins).reshape(n_sims, kbins).astype(float)
            props = (counts + SMOOTH) / (w + SMOOTH * kbins)
            stats[name] = psi_from_props(props, ref_props[f][None, :])
        if embeddings is not None:
            # draw counts c per held-out row: sum over pairs of draws = c K c; pairs of one row with itself
            # (K_jj = 1) are left out, so repeated draws do not look like a tight cluster
            c = np.zeros((n_sims, len(h_idx)))
            np.add.at(c, (np.repeat(np.arange(n_sims), w), idx.ravel()), 1.0)
            same = (c * c).sum(1)
            kxx = (((c @ k_hh) * c).sum(1) - same) / np.maximum(w * w - same, 1.0)
            stats["embedding"] = kxx - 2.0 * (c @ k_hr_mean) / w + kyy
        thr = {f: float(np.quantile(v, q)) for f, v in stats.items()}
        for f in feats:
            thr[f] = max(thr[f], PSI_FLOOR)
        fired = sum(drift_rule({f: stats[f][s] > thr[f] for f in stats}) for s in range(n_sims))
        out.append(Calibrated(int(w), thr, fired / n_sims, n_sims))
    return out


# ---- typical words -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TypicalWord:
    word: str
    live_share: float  # share of live texts in the window that contain the word
    reference_share: float
    log_odds: float  # > 0: typical of live traffic


def typical_words(live_df: Mapping[str, float], live_n: float, ref_df: Mapping[str, float], ref_n: float,
                  top: int = 10, min_docs: float = 5.0) -> tuple[list[TypicalWord], list[TypicalWord]]:
    """(words most typical of live traffic, words most typical of the reference) by smoothed log-odds of
    document frequency. A live word is shown only if at least `min_docs` live texts contain it, so one
    request's rare words (names, addresses) never surface."""
    if live_n <= 0 or ref_n <= 0:
        return [], []
    a = 0.5

    def row(w: str) -> TypicalWord:
        lw, rw = min(live_df.get(w, 0.0), live_n), min(ref_df.get(w, 0.0), ref_n)
        z = math.log((lw + a) / (live_n - lw + a)) - math.log((rw + a) / (ref_n - rw + a))
        return TypicalWord(w, lw / live_n, rw / ref_n, z)

    live_rows = [row(w) for w, c in live_df.items() if c >= min_docs]
    ref_rows = [row(w) for w, c in ref_df.items() if c >= min_docs]  # reference words: training data, safe
    live_top = sorted((r for r in live_rows if r.log_odds > 0), key=lambda r: -r.log_odds)[:top]
    ref_top = sorted((r for r in ref_rows if r.log_odds < 0), key=lambda r: r.log_odds)[:top]
    return live_top, ref_top
