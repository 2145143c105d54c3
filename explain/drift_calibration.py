"""Threshold calibration of the drift statistics (DESIGN.md §6; the method is in explain.drift's docstring).

Windows drawn from one half of the reference rows, at several prevalences, are scored by each feature's
statistic (explain.drift_stats) fitted on the other half; each threshold is the statistic's Bonferroni
quantile at the prevalence where it is highest.

Source mix (issue 19). The statistics compare a window with the reference as it is mixed: per class, a
fixed blend of the adapter's training sources. Live traffic of a class drawn from those same sources in
another blend (a generalist getting more SMS than URLs, more SpamAssassin ham than Enron) is not a
generalization failure, but it moves every statistic. When the reference rows carry their source, the
simulated windows therefore blend each class's sources as

    w = (1 - eps) * p + eps * u,    u ~ Dirichlet(1, ..., 1) over the class's training sources,

with p the class's reference source shares: a share `eps` of each class's traffic comes from its training
sources in an arbitrary proportion (u is uniform on the simplex, so the top quantiles that set the
thresholds come from nearly single-source blends), the rest as in the reference. Thresholds then hold
their false-alarm rate under any such blend, while a source outside the training sources, or another
style, still moves the statistics past them. `eps` bounds the tolerance: at 1 a window of any single
training source would be in the null, and for a generalist the distance of one source to the blend
(all-SMS vs a third SMS) is far larger than that of an unseen source to its nearest training source, so
the thresholds would no longer see unseen sources. Rows without a source (profiles built before sources
were recorded, or `source_shift=0`) keep the plain calibration: windows drawn uniformly per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .drift import drift_rule, rbf_gamma
from .drift_stats import MMD, PSI, DriftStatistic
from .prior import mle_prior

PRIOR_GRID: tuple[float, ...] = (0.01, 0.05, 0.2, 0.5, 0.9)  # live prevalences thresholds must hold at
SOURCE_SHIFT = 0.5  # eps: share of each class's traffic whose blend of training sources is arbitrary


@dataclass(frozen=True)
class Calibrated:
    """Thresholds for one window size and what the simulation measured with them."""

    window: int
    thresholds: dict[str, float]  # feature -> threshold (of the scalar statistic, or of the embedding one)
    false_alarm_rate: float  # highest share over the simulated priors of windows on which `drift_rule` fired
    n_sims: int  # simulated windows per prior
    false_alarm_by_prior: dict[float, float] = field(default_factory=dict)
    source_shift: float = 0.0  # eps the windows' source blends were perturbed with (0: plain calibration)


@dataclass(frozen=True)
class RowSet:
    """Labelled reference rows of one kind: `values` [n, F] named `names`, `y` [n] (1 = phishing),
    optional `embeddings` [n, d] and `sources` [n] (the corpus each row comes from)."""

    values: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]
    embeddings: np.ndarray | None = None
    sources: np.ndarray | None = None


def _halves(y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified split-half: (R, H) row indices."""
    r, h = [], []
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        r.append(idx[: len(idx) // 2])
        h.append(idx[len(idx) // 2 :])
    return np.concatenate(r), np.concatenate(h)


def _class_draws(
    h_idx: np.ndarray,
    rows: RowSet,
    c: int,
    shape: tuple[int, int],
    rng: np.random.Generator,
    blend: tuple[list[str], np.ndarray, float] | None,
) -> np.ndarray:
    """[S, w] positions in `h_idx` of class-`c` rows: uniform over the class's rows, or, with `blend` =
    (source names, u [S, k], eps), each window's rows from source s with probability (1 - eps) p_s + eps u_s
    (module docstring; p: this row set's shares, sources it lacks are left out and the rest renormalised)."""
    pos = np.flatnonzero(rows.y[h_idx] == c)
    if blend is None or rows.sources is None:
        return pos[rng.integers(0, len(pos), size=shape)]
    names, u, eps = blend
    src = np.asarray(rows.sources)[h_idx][pos]
    groups = [pos[src == s] for s in names]
    keep = [j for j, g in enumerate(groups) if len(g)]
    sizes = np.array([len(groups[j]) for j in keep])
    weights = (1 - eps) * sizes / sizes.sum() + eps * u[:, keep]
    cum = np.cumsum(weights / weights.sum(1, keepdims=True), 1)  # [S, k]
    # the source of each draw by inverse CDF (one draw per window row), then a uniform row of that source
    which = np.minimum((rng.random(shape)[..., None] > cum[:, None, :]).sum(-1), len(keep) - 1)
    flat = np.concatenate([groups[j] for j in keep])
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return flat[start[which] + (rng.random(shape) * sizes[which]).astype(np.int64)]


def _draw(
    h_idx: np.ndarray,
    rows: RowSet,
    n1: np.ndarray,
    w: int,
    rng: np.random.Generator,
    blends: dict[int, tuple[list[str], np.ndarray, float]] | None = None,
) -> np.ndarray:
    """[S, w] positions in `h_idx`: the first n1[s] of row s phishing rows, the rest legitimate ones."""
    shape = (len(n1), w)
    a = _class_draws(h_idx, rows, 1, shape, rng, None if blends is None else blends.get(1))
    b = _class_draws(h_idx, rows, 0, shape, rng, None if blends is None else blends.get(0))
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
    source_shift: float = SOURCE_SHIFT,
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
    When both row sets carry `sources` and `source_shift` > 0, each window's per-class blend of sources is
    perturbed (module docstring), one blend per window shared by both row sets, so the thresholds also
    hold for traffic from the training sources in another blend.
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
    eps = source_shift if scored.sources is not None and styled.sources is not None else 0.0
    names_by_class = {
        c: sorted({str(s) for rows in (scored, styled) for s in np.asarray(rows.sources)[rows.y == c]})
        for c in ((0, 1) if eps > 0 else ())
    }
    # a class from one source has no other blend: it is drawn as before (a specialist's thresholds stay)
    names_by_class = {c: names for c, names in names_by_class.items() if len(names) > 1}
    out = []
    for w in windows:
        per_prior: dict[float, dict[str, np.ndarray]] = {}
        for pi in priors:
            n1 = rng.binomial(w, pi, size=n_sims)
            blends = (
                {
                    c: (names, rng.dirichlet(np.ones(len(names)), size=n_sims), eps)
                    for c, names in names_by_class.items()
                }
                if names_by_class
                else None
            )
            draws = (_draw(hs, scored, n1, w, rng, blends), _draw(hx, styled, n1, w, rng, blends))
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
        out.append(Calibrated(int(w), thr, max(fa.values()), n_sims, fa, eps))
    return out
