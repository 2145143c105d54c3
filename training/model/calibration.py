"""Calibration on validation rows: temperature, decision threshold and the uncertain band.

All three are fitted on held-out *validation* rows (never test) and stored in the bundle manifest
(``Calibration``: temperature, threshold, uncertain_low, uncertain_high; DESIGN.md §3).

- :func:`fit_temperature` — the served probability is ``sigmoid(margin / T)`` where
  ``margin = logit(phishing) - logit(legit)``; T minimises the validation NLL.
- :func:`choose_threshold` — the P(phishing) cut that maximises validation F1 (optionally among the cuts
  whose validation false-positive rate is at most ``max_fpr``).
- :func:`uncertain_band` — a (low, high) band around the threshold where the classifier's local
  accuracy is poor; the server flags predictions inside it as ``uncertain``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from phishlens.training.contract.bundle import Calibration

T_MIN, T_MAX = 0.05, 50.0
THRESHOLD_EPS = 1e-4  # thresholds stay inside the open interval (0, 1), as the manifest requires


def _as_xy(a: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float).ravel()
    yy = np.asarray(y).ravel()
    if x.shape != yy.shape:
        raise ValueError(f"scores and labels differ in length: {x.shape} vs {yy.shape}")
    if np.isnan(x).any():
        raise ValueError("scores contain NaN")
    if yy.size and not np.isin(yy, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return x, yy.astype(int)


def _nll(beta: float, signed_margins: np.ndarray) -> float:
    # mean of -log sigmoid(s * m * beta) = log(1 + exp(-s m beta)), computed stably
    return float(np.mean(np.logaddexp(0.0, -signed_margins * beta)))


def fit_temperature(
    margins: Sequence[float] | np.ndarray,
    y: Sequence[int] | np.ndarray,
    t_min: float = T_MIN,
    t_max: float = T_MAX,
) -> float:
    """Temperature T > 0 minimising the NLL of ``sigmoid(margin / T)`` against ``y`` (1 = phishing).

    The NLL is convex in ``beta = 1/T`` (a one-feature logistic regression without intercept), so a
    log-spaced grid followed by a bounded golden-section refinement around the best grid point finds
    the optimum reliably. The result is clipped to ``[t_min, t_max]``: separable data (optimum
    ``T -> 0``) gives ``t_min``; margins that carry no or inverted signal give ``t_max``.
    Returns 1.0 (no change) when there is nothing to fit: fewer than 2 rows or a single class.
    Infinite margins are clipped to ±1e4.
    """
    m, yy = _as_xy(margins, y)
    if m.size < 2 or yy.min() == yy.max():
        return 1.0
    m = np.clip(m, -1e4, 1e4)
    signed = np.where(yy == 1, m, -m)
    if not np.any(signed):
        return 1.0
    from scipy.optimize import minimize_scalar

    lb_lo, lb_hi = np.log(1.0 / t_max), np.log(1.0 / t_min)
    grid = np.linspace(lb_lo, lb_hi, 61)
    losses = np.array([_nll(float(np.exp(g)), signed) for g in grid])
    i = int(np.argmin(losses))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    best_lb, best_loss = float(grid[i]), float(losses[i])
    if hi > lo:
        res = minimize_scalar(
            lambda g: _nll(float(np.exp(g)), signed),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": 1e-6},
        )
        if res.success and float(res.fun) <= best_loss:
            best_lb = float(res.x)
    return float(np.clip(1.0 / np.exp(best_lb), t_min, t_max))


def apply_temperature(margins: Sequence[float] | np.ndarray, temperature: float) -> np.ndarray:
    """P(phishing) = sigmoid(margin / T), numerically stable."""
    z = np.asarray(margins, dtype=float) / float(temperature)
    return np.exp(-np.logaddexp(0.0, -z))


def _f1_at(
    p_sorted_asc: np.ndarray, pos_sorted_asc: np.ndarray, n_pos: int, thresholds: np.ndarray
) -> np.ndarray:
    """F1 of ``p >= t`` for each t, given scores sorted ascending and matching positive flags."""
    n = p_sorted_asc.size
    idx = np.searchsorted(p_sorted_asc, thresholds, side="left")  # first index with p >= t
    tp = _at_or_above(pos_sorted_asc, idx)
    predicted = n - idx
    denom = predicted + n_pos  # = 2tp + fp + fn
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)


def _at_or_above(flags_sorted_asc: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """How many flagged rows lie at or above each index of the ascending score order."""
    suffix = np.concatenate((np.cumsum(flags_sorted_asc[::-1])[::-1], [0]))
    return suffix[idx]


def choose_threshold(
    p: Sequence[float] | np.ndarray, y: Sequence[int] | np.ndarray, max_fpr: float | None = None
) -> float:
    """The threshold on P(phishing) maximising F1 of ``p >= t`` on validation rows.

    Candidates are 0.5 and the midpoints between consecutive distinct scores (with 0 and 1 as outer
    bounds), so a chosen cut never sits exactly on a validation score. Among thresholds with the same
    (maximal) F1 the one closest to 0.5 wins. Returns 0.5 on empty input or when there are no
    positives (F1 is 0 everywhere). The result lies in ``[1e-4, 1 - 1e-4]``.

    ``max_fpr``: only cuts whose validation false-positive rate is at most this compete. F1 on the
    balanced validation mix rewards recall at any FPR; on sources the adapter never saw the FPR is several
    times the validation one (docs/eval/generalization.md), so a product that must keep false alarms low
    caps it where it can be measured (issue 13).
    """
    s, yy = _as_xy(p, y)
    n_pos = int(yy.sum())
    if s.size == 0 or n_pos == 0:
        return 0.5
    order = np.argsort(s, kind="mergesort")
    s_sorted, pos_sorted = s[order], (yy[order] == 1).astype(int)
    distinct = np.unique(np.clip(s_sorted, 0.0, 1.0))
    bounds = np.unique(np.concatenate(([0.0], distinct, [1.0])))
    mids = (bounds[:-1] + bounds[1:]) / 2.0
    cands = np.unique(np.clip(np.concatenate((mids, [0.5])), THRESHOLD_EPS, 1.0 - THRESHOLD_EPS))
    f1 = _f1_at(s_sorted, pos_sorted, n_pos, cands)
    if max_fpr is not None:
        if not 0.0 <= max_fpr < 1.0:
            raise ValueError(f"max_fpr must be in [0, 1), got {max_fpr}")
        neg_sorted = (yy[order] == 0).astype(int)
        n_neg = int(neg_sorted.sum())
        if n_neg:
            fpr = _at_or_above(neg_sorted, np.searchsorted(s_sorted, cands, side="left")) / n_neg
            f1 = np.where(fpr <= max_fpr + 1e-12, f1, -1.0)
            if (f1 < 0).all():  # legitimate rows at the very top: the highest cut is the closest
                return float(cands[-1])
    best = f1.max()
    tied = cands[np.isclose(f1, best, rtol=0.0, atol=1e-12)]
    return float(tied[np.argmin(np.abs(tied - 0.5))])


def uncertain_band(
    p: Sequence[float] | np.ndarray,
    y: Sequence[int] | np.ndarray,
    threshold: float | None = None,
    *,
    window: float = 0.1,
    min_accuracy: float = 0.9,
    min_count: int = 5,
    min_half_width: float = 0.02,
    max_half_width: float = 0.3,
    step: float = 0.01,
) -> tuple[float, float]:
    """A (low, high) band around ``threshold`` where validation accuracy is locally below ``min_accuracy``.

    Rule (simple on purpose): slide a window of width ``window`` centred at ``c`` outwards from the
    threshold in steps of ``step``, separately on each side. The local accuracy at ``c`` is the
    accuracy of the decisions ``p >= threshold`` for the validation rows with ``|p - c| <= window/2``.
    A side stops at the first centre whose window is accurate enough (``>= min_accuracy``) or holds
    fewer than ``min_count`` rows (few rows near a score = the model rarely hesitates there); the band
    edge is the last centre that was not accurate. Each half-width is then clipped to
    ``[min_half_width, max_half_width]`` and the band to ``[0, 1]``, so ``low <= threshold <= high``
    always holds (the bundle manifest checks this).
    ``threshold`` defaults to :func:`choose_threshold` on the same rows.
    """
    s, yy = _as_xy(p, y)
    t = choose_threshold(s, yy) if threshold is None else float(threshold)
    correct = (s >= t).astype(int) == yy
    half = window / 2.0

    def accurate(c: float) -> bool:
        inside = np.abs(s - c) <= half + 1e-12
        k = int(inside.sum())
        return k < min_count or float(correct[inside].mean()) >= min_accuracy

    def reach(direction: int) -> float:
        width = 0.0
        n_steps = int(round(max_half_width / step))
        for i in range(n_steps + 1):
            c = t + direction * i * step
            if c < 0.0 or c > 1.0 or accurate(c):
                break
            width = i * step
        return width

    lo_w = float(np.clip(reach(-1), min_half_width, max_half_width))
    hi_w = float(np.clip(reach(+1), min_half_width, max_half_width))
    low = float(np.clip(t - lo_w, 0.0, t))
    high = float(np.clip(t + hi_w, t, 1.0))
    return round(low, 6), round(high, 6)


def fit_calibration(
    margins: Sequence[float] | np.ndarray,
    y: Sequence[int] | np.ndarray,
    max_fpr: float | None = None,
    temperature: float | None = None,
) -> Calibration:
    """The manifest's calibration from validation margins: temperature (fitted unless given), threshold
    (:func:`choose_threshold`, kept inside [0.02, 0.98]) and the uncertain band, on calibrated P."""
    m, yy = _as_xy(margins, y)
    t_fit = fit_temperature(m, yy) if temperature is None else float(temperature)
    pv = apply_temperature(m, t_fit)
    threshold = float(np.clip(choose_threshold(pv, yy, max_fpr), 0.02, 0.98))
    neg = pv[yy == 0]
    if max_fpr is not None and neg.size and (fpr := float((neg >= threshold).mean())) > max_fpr + 1e-12:
        # the cap wants a cut above 0.98: legitimate validation rows score that high; say so, never serve
        # a threshold that silently breaks the rule the manifest records
        raise ValueError(
            f"no threshold in [0.02, 0.98] keeps the validation false-positive rate at or below {max_fpr:g} "
            f"(at {threshold:.2f} it is {fpr:.3f})"
        )
    low, high = uncertain_band(pv, yy, threshold)
    return Calibration(
        temperature=t_fit,
        threshold=threshold,
        uncertain_low=min(low, threshold),
        uncertain_high=max(high, threshold),
        max_fpr=max_fpr,
    )
