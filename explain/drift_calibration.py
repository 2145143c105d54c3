"""Threshold calibration of the drift statistics (DESIGN.md §6; the method is in explain.drift's docstring).

Windows drawn from one half of the reference rows, at several prevalences, are scored by each feature's
statistic (explain.drift_stats) fitted on the other half; each threshold is the statistic's Bonferroni
quantile at the prevalence where it is highest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .drift import drift_rule, rbf_gamma
from .drift_stats import MMD, PSI, DriftStatistic
from .prior import mle_prior

PRIOR_GRID: tuple[float, ...] = (0.01, 0.05, 0.2, 0.5, 0.9)  # live prevalences thresholds must hold at


@dataclass(frozen=True)
class Calibrated:
    """Thresholds for one window size and what the simulation measured with them."""

    window: int
    thresholds: dict[str, float]  # feature -> threshold (of the scalar statistic, or of the embedding one)
    false_alarm_rate: float  # highest share over the simulated priors of windows on which `drift_rule` fired
    n_sims: int  # simulated windows per prior
    false_alarm_by_prior: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RowSet:
    """Labelled reference rows of one kind: `values` [n, F] named `names`, `y` [n] (1 = phishing),
    optional `embeddings` [n, d]."""

    values: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    embeddings: np.ndarray | None = None


def _halves(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified split-half: (R, H) row indices."""
    r, h = [], []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        r.append(idx[: len(idx) // 2])
        h.append(idx[len(idx) // 2 :])
    return np.concatenate(r), np.concatenate(h)


def _draw(h_idx: np.ndarray, y: np.ndarray, n1: np.ndarray, w: int, rng: np.random.Generator) -> np.ndarray:
    """[S, w] positions in `h_idx`: the first n1[s] of row s phishing rows, the rest legitimate ones."""
    pos, neg = np.flatnonzero(y[h_idx] == 1), np.flatnonzero(y[h_idx] == 0)
    a = pos[rng.integers(0, len(pos), size=(len(n1), w))]
    b = neg[rng.integers(0, len(neg), size=(len(n1), w))]
    return np.where(np.arange(w)[None, :] < n1[:, None], a, b)


def calibrate(
    scored: RowSet,
    styled: RowSet,
    calibration_prior: float,
    windows: Sequence[int],
    alpha: float = 0.005,
    n_sims: int = 2000,
    seed: int = 0,
    gamma: float | None = None,
    priors: Sequence[float] = PRIOR_GRID,
    scalar: type[DriftStatistic] = PSI,
    embedding: type[DriftStatistic] = MMD,
) -> list[Calibrated]:
    """Thresholds per window size, valid at every live prevalence in `priors`.

    `scored` holds the model-dependent features of held-out rows (column 0 = calibrated P(phishing)),
    `styled` the model-independent ones (style features, embeddings), possibly from more rows. Each is
    split in halves per class; for each prior and window size, `n_sims` windows are drawn from one half
    (class counts ~ Binomial(W, prior), the same counts for both row sets), the prior is estimated from
    the drawn scores exactly as live (explain.prior), and every statistic (`scalar` per feature column,
    `embedding` for the embeddings) is computed against the other half reweighted to that estimate. Each
    threshold is the (1 - alpha/k) quantile (Bonferroni over the k statistics) at the prior where it is
    highest (and at least the statistic's `floor`), so an in-distribution window at any of these
    prevalences raises the alert with probability <= alpha, estimation error of the prior included.
    """
    rng = np.random.default_rng(seed)
    for rows in (scored, styled):
        if min((rows.y == 0).sum(), (rows.y == 1).sum()) < 10:
            raise ValueError("need at least 10 reference rows of each class to calibrate thresholds")
    rs, hs = _halves(scored.y, rng)
    rx, hx = _halves(styled.y, rng)
    emb = styled.embeddings
    k_stats = len(scored.names) + len(styled.names) + (1 if emb is not None else 0)
    q = 1.0 - alpha / k_stats
    # each statistic fitted once on the R half; `held` is what its windows are drawn from (the H half)
    fitted: dict[str, tuple[DriftStatistic, np.ndarray, int]] = {}  # name -> (statistic, held, row set)
    for which, (rows, r_idx, h_idx) in enumerate(((scored, rs, hs), (styled, rx, hx))):
        for f, name in enumerate(rows.names):
            col = rows.values[:, f]
            fitted[name] = (scalar.fit(col[r_idx], rows.y[r_idx]), col[h_idx], which)
    if emb is not None:
        gamma = rbf_gamma(emb) if gamma is None else gamma  # pass the served bandwidth: same kernel
        fitted["embedding"] = (
            embedding.fit(emb[rx].astype(np.float64), styled.y[rx], gamma=gamma),
            emb[hx].astype(np.float64),
            1,
        )
    out = []
    for w in windows:
        per_prior: dict[float, dict[str, np.ndarray]] = {}
        for pi in priors:
            n1 = rng.binomial(w, pi, size=n_sims)
            draws = (_draw(hs, scored.y, n1, w, rng), _draw(hx, styled.y, n1, w, rng))
            pi_hat = mle_prior(scored.values[hs, 0][draws[0]], calibration_prior)
            per_prior[pi] = {
                name: stat.simulate(held, draws[which], pi_hat)
                for name, (stat, held, which) in fitted.items()
            }
        names = list(per_prior[priors[0]])
        thr = {f: max(float(np.quantile(per_prior[pi][f], q)) for pi in priors) for f in names}
        for f in names:
            floor = fitted[f][0].floor
            if floor is not None:
                thr[f] = max(thr[f], floor)
        fa = {
            pi: float(np.mean([drift_rule({f: st[f][s] > thr[f] for f in names}) for s in range(n_sims)]))
            for pi, st in per_prior.items()
        }
        out.append(Calibrated(int(w), thr, max(fa.values()), n_sims, fa))
    return out
