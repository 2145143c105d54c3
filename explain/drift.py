"""Drift statistics (DESIGN.md §6): the pure numpy functions behind them, shared by the bundle builder and
the live monitor. The statistics themselves (PSI, MMD²) are plug-in classes in explain.drift_stats.

Label shift is not drift. Phishing prevalence moves all the time (a few percent of real traffic, in
waves), and every feature that differs between the classes (score, URL count, the embedding) moves with
it. So the reference is kept per class, the window's prevalence is estimated from the calibrated scores
(explain.prior), and every statistic compares the window with the reference MIXED AT THAT PREVALENCE:
only a change in what the texts of a class look like (covariate shift: a new style or source) raises it.

- PSI over reference deciles for every scalar feature (score, uncertainty, style features), against the
  per-class bin shares mixed at the prior; KS against the mixed CDF as a second, threshold-free view.
- Unbiased MMD² with an RBF kernel (median-heuristic bandwidth) between a window of text embeddings and
  the reference embedding sample reweighted to the prior (pairs of identical texts left out).
- A per-text out-of-distribution score: mean cosine distance to the k nearest reference embeddings,
  divided by the reference's own leave-one-out 99th percentile (so 1.0 = "as odd as the oddest 1 % of
  the reference").
- Threshold calibration (explain.drift_calibration): windows of size W drawn (class counts ~ Binomial(W,
  prior)) from one half of the reference rows, at each of several prevalences, are compared with the
  other half reweighted to the prior estimated from the drawn scores; each statistic's threshold is its
  (1 - alpha/k) quantile
  (Bonferroni over the k statistics) at the prevalence where it is highest, so an in-distribution window
  raises any statistic with probability <= alpha whatever the prevalence, the estimation error included.
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
    """Unbiased MMD² between samples x [n, d] and y [m, d]; `kyy` = precomputed off-diagonal mean of
    K(y, y)."""
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


# ---- class-conditional reference, reweighted to the live prior ----------------------------------------
# Under label shift the live distribution of any feature is pi * p(x | phishing) + (1 - pi) * p(x | legit),
# with pi the live prevalence (explain.prior). Every reference statistic below is kept per class and mixed
# at the window's estimated prior, so a change in how much phishing arrives moves nothing.
def mixture_props(props_by_class: np.ndarray, prior: float | np.ndarray) -> np.ndarray:
    """[2, k] per-class bin shares (legitimate, phishing) → the mixture at `prior` ([k], or [S, k])."""
    pi = np.asarray(prior, dtype=np.float64)[..., None]
    return pi * props_by_class[1] + (1.0 - pi) * props_by_class[0]


def ks_mixture(live: np.ndarray, sorted_by_class: Sequence[np.ndarray], prior: float) -> float:
    """KS statistic between a live sample and the class-mixture of two sorted reference samples."""
    live = np.sort(np.asarray(live, dtype=np.float64))
    s0, s1 = (np.asarray(s, dtype=np.float64) for s in sorted_by_class)
    if len(live) == 0 or len(s0) == 0 or len(s1) == 0:
        return 0.0
    grid = np.concatenate([live, s0, s1])
    f_live = np.searchsorted(live, grid, side="right") / len(live)
    f_ref = prior * np.searchsorted(s1, grid, side="right") / len(s1) + (1 - prior) * np.searchsorted(
        s0, grid, side="right"
    ) / len(s0)
    return float(np.max(np.abs(f_live - f_ref)))


def reference_quantile_mixture(
    values: np.ndarray, sorted_by_class: Sequence[np.ndarray], prior: float, rng: np.random.Generator
) -> np.ndarray:
    """Randomised PIT under the class mixture at `prior` (uniform on [0, 1] for in-distribution values)."""
    values = np.asarray(values, dtype=np.float64)
    r = rng.random(len(values))
    u = np.zeros(len(values))
    for w, s in ((1 - prior, sorted_by_class[0]), (prior, sorted_by_class[1])):
        s = np.asarray(s, dtype=np.float64)
        lo = np.searchsorted(s, values, side="left")
        hi = np.searchsorted(s, values, side="right")
        u += w * (lo + r * (hi - lo)) / max(len(s), 1)
    return np.clip(u, 0.0, 1.0)


@dataclass(frozen=True)
class KernelMeans:
    """Off-diagonal means of K(ref, ref) within and between the classes, for the reweighted MMD."""

    k00: float
    k01: float
    k11: float

    def kyy(self, prior: float | np.ndarray) -> float | np.ndarray:
        return prior * prior * self.k11 + 2 * prior * (1 - prior) * self.k01 + (1 - prior) ** 2 * self.k00

    @classmethod
    def of(cls, ref: np.ndarray, y: np.ndarray, gamma: float) -> KernelMeans:
        a, b = ref[y == 0], ref[y == 1]
        return cls(
            offdiag_mean(rbf(a, a, gamma)), float(rbf(a, b, gamma).mean()), offdiag_mean(rbf(b, b, gamma))
        )


def mmd2_prior(
    x: np.ndarray, ref: np.ndarray, y: np.ndarray, gamma: float, km: KernelMeans, prior: float
) -> float:
    """Unbiased MMD² between a window x [n, d] and the reference [m, d] reweighted to `prior`
    (y: 1 = phishing).

    The within-window term skips pairs of identical texts as well as the diagonal: a campaign repeating
    one message is not, by itself, a new kind of traffic (and calibration draws rows with replacement)."""
    if len(x) < 2 or (y == 0).sum() < 1 or (y == 1).sum() < 1:
        return 0.0
    x = x.astype(np.float64)
    d = _sqdist(x, x)
    keep = d > 1e-8
    kxx = float(np.exp(-gamma * d)[keep].mean()) if keep.any() else 1.0
    kxr = rbf(x, ref, gamma)
    cross = prior * kxr[:, y == 1].mean() + (1 - prior) * kxr[:, y == 0].mean()
    return float(kxx - 2.0 * cross + km.kyy(prior))


# ---- alert rule --------------------------------------------------------------------------------------
def drift_rule(over: Mapping[str, bool]) -> bool:
    """The alert rule: embedding over its threshold, or >= 2 scalar features over theirs."""
    return bool(over.get("embedding", False)) or sum(v for f, v in over.items() if f != "embedding") >= 2


# ---- typical words -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TypicalWord:
    word: str
    live_share: float  # share of live texts in the window that contain the word
    reference_share: float
    log_odds: float  # > 0: typical of live traffic


def typical_words(
    live_df: Mapping[str, float],
    live_n: float,
    ref_df: Mapping[str, float],
    ref_n: float,
    top: int = 10,
    min_docs: float = 5.0,
) -> tuple[list[TypicalWord], list[TypicalWord]]:
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
