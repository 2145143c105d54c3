"""Live class prior (phishing prevalence) from calibrated probabilities, under label shift.

An adapter's P(phishing) is calibrated on rows with phishing share `pi_t` (its calibration rows, balanced
today). If live traffic differs only in how much phishing arrives (p(x | y) unchanged, the prior moves to
`pi`), each served probability p gives the likelihood ratio

    r = f1(x) / f0(x) = [p / (1 - p)] * [(1 - pi_t) / pi_t]

and the live prior is the maximum-likelihood mixture weight of a window:

    pi_hat = argmax_pi  sum_i log(pi * r_i + 1 - pi).

That is exactly the fixed point of the EM of Saerens, Latinne & Decaestecker (2002, "Adjusting the outputs
of a classifier to new a priori probabilities"); the log-likelihood is concave in pi, so we find it by
bisection on its derivative (fast, vectorised over many windows, no slow EM tail near 0). The interval is
the profile-likelihood one (log-likelihood within chi2_1(0.95)/2 = 1.92 of its maximum), which behaves at
the boundary (a window with no phishing gives [0, small]) where a Wald interval does not.

`adjust_posteriors` re-expresses the served probabilities under the live prior (Saerens eq. 2.4): what
expected precision / recall (CBPE) must use when the prevalence differs from the calibration rows'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-6
CHI2_1_95_HALF = 1.920729  # chi2 quantile 0.95 with 1 d.o.f., halved
BISECT_STEPS = 48


@dataclass(frozen=True)
class PriorEstimate:
    estimate: float  # maximum-likelihood live phishing prevalence
    low: float  # 95 % profile-likelihood interval
    high: float
    n: int  # texts it is estimated from


def likelihood_ratios(p: np.ndarray, calibration_prior: float) -> np.ndarray:
    """f1(x)/f0(x) from calibrated P(phishing) (any shape)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    t = float(np.clip(calibration_prior, EPS, 1 - EPS))
    return p / (1 - p) * ((1 - t) / t)


def _dloglik(pi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """d/dpi of sum log(pi r + 1 - pi) over the last axis; pi broadcasts over the leading axes."""
    return ((r - 1) / (pi[..., None] * (r - 1) + 1)).sum(-1)


def _loglik(pi: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(pi[..., None] * (r - 1) + 1, 1e-300)).sum(-1)


def mle_prior(p: np.ndarray, calibration_prior: float) -> np.ndarray:
    """Maximum-likelihood prior of each window: p [..., n] → [...] (the EM fixed point, by bisection)."""
    r = likelihood_ratios(p, calibration_prior)
    lo = np.zeros(r.shape[:-1])
    hi = np.ones(r.shape[:-1])
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        up = _dloglik(mid, r) > 0  # still rising: the maximum lies to the right
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return (lo + hi) / 2


def _bound(r: np.ndarray, pi_hat: float, target: float, side: int) -> float:
    """The pi on one side of pi_hat where the log-likelihood falls to `target` (or the edge of [0, 1])."""
    edge = 0.0 if side < 0 else 1.0
    if _loglik(np.array(edge), r) >= target:
        return edge
    inner, outer = pi_hat, edge  # loglik(inner) >= target > loglik(outer)
    for _ in range(BISECT_STEPS):
        mid = (inner + outer) / 2
        if _loglik(np.array(mid), r) >= target:
            inner = mid
        else:
            outer = mid
    return float((inner + outer) / 2)


def em_prior(p: np.ndarray, calibration_prior: float) -> PriorEstimate:
    """Live prevalence of one window of calibrated P(phishing), with its 95 % interval."""
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(p) == 0:
        return PriorEstimate(float("nan"), 0.0, 1.0, 0)
    r = likelihood_ratios(p, calibration_prior)
    pi_hat = float(mle_prior(p, calibration_prior))
    target = float(_loglik(np.array(pi_hat), r)) - CHI2_1_95_HALF
    return PriorEstimate(pi_hat, _bound(r, pi_hat, target, -1), _bound(r, pi_hat, target, +1), len(p))


def adjust_posteriors(p: np.ndarray, calibration_prior: float, live_prior: float) -> np.ndarray:
    """P(phishing | x) under the live prior, from P calibrated under `calibration_prior` (Saerens eq. 2.4)."""
    r = likelihood_ratios(p, calibration_prior)
    q = float(np.clip(live_prior, 0.0, 1.0))
    return q * r / (q * r + 1 - q)


def prevalence_shift(
    low: float, high: float, usual: np.ndarray | list[float], factor: float = 2.0, margin: float = 0.02
) -> bool:
    """The rule of the PhishlensPrevalenceShift alert (deploy/prometheus/alerts.yml), for benchmarks and
    tests: the 95 % interval lies wholly above `factor` x the lower quartile of the usual estimates
    (+ margin), or wholly under the upper quartile / `factor` (- margin). The alert takes 6 hours of them."""
    q1, q3 = np.quantile(np.asarray(usual, dtype=np.float64), [0.25, 0.75])
    return bool(low > factor * q1 + margin or high < q3 / factor - margin)
