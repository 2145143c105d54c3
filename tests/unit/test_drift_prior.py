"""The live phishing prevalence from calibrated scores (explain/prior.py) on synthetic calibrated scores."""

from __future__ import annotations

import numpy as np

from phishlens.explain import prior as P


def scores(n: int, prior: float, rng: np.random.Generator) -> np.ndarray:
    """P(phishing) calibrated at prior 0.5 (exact posteriors of N(+-1, 1) classes), labels drawn at
    `prior`."""
    y = rng.random(n) < prior
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    return 1 / (1 + np.exp(-2.0 * x))


def saerens_em(p: np.ndarray, pi_t: float, steps: int = 5000) -> float:
    """The EM of Saerens et al. (2002) itself: the estimate must be its fixed point."""
    pi = pi_t
    for _ in range(steps):
        q = (pi / pi_t) * p / ((pi / pi_t) * p + ((1 - pi) / (1 - pi_t)) * (1 - p))
        pi = float(q.mean())
    return pi


def test_maximum_likelihood_prior_is_the_em_fixed_point():
    rng = np.random.default_rng(0)
    for prior in (0.1, 0.3, 0.7):
        p = scores(400, prior, rng)
        assert abs(float(P.mle_prior(p, 0.5)) - saerens_em(p, 0.5)) < 1e-4
    # vectorised over windows: one estimate per row
    batch = np.stack([scores(200, 0.2, rng) for _ in range(5)])
    assert P.mle_prior(batch, 0.5).shape == (5,)


def test_interval_covers_the_prevalence():
    rng = np.random.default_rng(1)
    for prior in (0.0, 0.01, 0.05, 0.13, 0.5, 0.95):
        cover = []
        for _ in range(60):
            e = P.em_prior(scores(200, prior, rng), 0.5)
            assert 0.0 <= e.low <= e.estimate <= e.high <= 1.0 and e.n == 200
            cover.append(e.low - 1e-9 <= prior <= e.high + 1e-9)
        assert np.mean(cover) >= 0.85, (prior, np.mean(cover))  # nominal 95 %
    assert P.em_prior(np.array([]), 0.5).n == 0


def test_adjusted_posteriors():
    p = np.array([0.1, 0.5, 0.9])
    assert np.allclose(P.adjust_posteriors(p, 0.5, 0.5), p)
    low = P.adjust_posteriors(p, 0.5, 0.05)
    assert np.all(low < p) and np.isclose(low[1], 0.05)  # a coin toss at 50 % is the prior itself
    assert np.allclose(P.adjust_posteriors(low, 0.05, 0.5), p)  # and back


def test_prevalence_shift_rule():
    usual = [0.02] * 30
    assert P.prevalence_shift(0.24, 0.37, usual)  # a wave to 30 %
    assert not P.prevalence_shift(0.01, 0.06, usual)  # the usual 2 %
    assert not P.prevalence_shift(0.03, 0.12, usual)  # 6 %, interval still reaches 2x + 0.02 = 6 %
    assert P.prevalence_shift(0.005, 0.05, [0.3] * 30)  # a lull from 30 % to 2 %
