import numpy as np
import pytest

from phishlens.training.model.calibration import (
    apply_temperature,
    choose_threshold,
    fit_temperature,
    uncertain_band,
)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5, 6.0])
def test_temperature_recovers_known_t(true_t):
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 3.0, 20_000)  # calibrated logits
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)
    margins = z * true_t  # an over/under-confident model: sigmoid(margin / T) recovers z
    t = fit_temperature(margins, y)
    assert t == pytest.approx(true_t, rel=0.10)


def test_temperature_degenerate_inputs():
    assert fit_temperature([], []) == 1.0
    assert fit_temperature([1.0, 2.0], [1, 1]) == 1.0
    # separable -> smallest temperature; inverted signal -> largest
    assert fit_temperature([5.0, -5.0, 4.0, -3.0], [1, 0, 1, 0]) == pytest.approx(0.05)
    assert fit_temperature([-5.0, 5.0, -4.0, 3.0], [1, 0, 1, 0]) == pytest.approx(50.0)
    assert np.isfinite(fit_temperature([np.inf, -np.inf, 1.0, -1.0], [1, 0, 0, 1]))


def test_apply_temperature():
    p = apply_temperature([0.0, 1000.0, -1000.0, 2.0], 2.0)
    assert np.allclose(p, [0.5, 1.0, 0.0, 1 / (1 + np.exp(-1.0))], atol=1e-12)


def test_choose_threshold_separable_prefers_half():
    p = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    y = [0, 0, 0, 1, 1, 1]
    assert choose_threshold(p, y) == 0.5


def test_choose_threshold_shifted_scores():
    p = np.array([0.01, 0.02, 0.03, 0.10, 0.12, 0.15])
    y = np.array([0, 0, 0, 1, 1, 1])
    t = choose_threshold(p, y)
    assert 0.03 < t <= 0.10
    assert t == pytest.approx(0.065)  # midpoint of the perfect interval


def test_choose_threshold_maximises_f1():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.15, 500), 0, 1)
    t = choose_threshold(p, y)
    from phishlens.training.evaluation.metrics import binary_metrics

    best = binary_metrics(y, p, t)["f1"]
    for c in np.linspace(0.01, 0.99, 99):
        assert binary_metrics(y, p, c)["f1"] <= best + 1e-12
    assert 0 < t < 1


def test_choose_threshold_edge_cases():
    assert choose_threshold([], []) == 0.5
    assert choose_threshold([0.2, 0.9], [0, 0]) == 0.5
    t = choose_threshold([1.0, 1.0, 0.0], [1, 1, 0])
    assert 0 < t < 1


def test_uncertain_band_contains_threshold_and_widens_with_overlap():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 4000)
    clean = np.where(y == 1, rng.uniform(0.8, 1.0, y.size), rng.uniform(0.0, 0.2, y.size))
    lo, hi = uncertain_band(clean, y, 0.5)
    assert (lo, hi) == (pytest.approx(0.48), pytest.approx(0.52))  # no hesitation: minimal band
    noisy = np.clip(np.where(y == 1, rng.normal(0.62, 0.15, y.size), rng.normal(0.38, 0.15, y.size)), 0, 1)
    lo2, hi2 = uncertain_band(noisy, y, 0.5)
    assert lo2 < 0.45 and hi2 > 0.55 and lo2 <= 0.5 <= hi2
    assert hi2 - lo2 <= 0.6 + 1e-9
    t = choose_threshold(noisy, y)
    lo3, hi3 = uncertain_band(noisy, y)
    assert lo3 <= t <= hi3 and 0.0 <= lo3 and hi3 <= 1.0


def test_uncertain_band_fits_bundle_calibration():
    from phishlens.training.contract.bundle import Calibration

    lo, hi = uncertain_band([0.99, 0.995, 0.01], [1, 1, 0], 0.995)
    assert 0.0 <= lo <= 0.995 <= hi <= 1.0
    # the manifest model accepts the band as computed (it refuses a band that excludes the threshold)
    c = Calibration(threshold=0.995, uncertain_low=lo, uncertain_high=hi)
    assert (c.uncertain_low, c.uncertain_high) == (lo, hi)


def _rates(p, y, t):
    pred = p >= t
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1), fp / max(int((y == 0).sum()), 1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("max_fpr", [0.0, 0.01, 0.05, 0.2])
def test_choose_threshold_with_max_fpr_is_the_f1_best_cut_under_the_cap(seed, max_fpr):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = (rng.random(n) < 0.5).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1).round(2)  # overlapping, with ties
    t = choose_threshold(p, y, max_fpr)
    f1, fpr = _rates(p, y, t)
    assert fpr <= max_fpr + 1e-12
    # brute force over every cut between distinct scores: none under the cap has a higher F1
    s = np.unique(np.r_[0.0, p, 1.0])
    best = max(f for f, r in (_rates(p, y, c) for c in (s[:-1] + s[1:]) / 2) if r <= max_fpr + 1e-12)
    assert f1 == pytest.approx(best)
    # the cap only ever raises the cut, and without it the old rule is unchanged
    assert t >= choose_threshold(p, y) or _rates(p, y, choose_threshold(p, y))[1] <= max_fpr


def test_choose_threshold_max_fpr_edge_cases():
    p, y = np.array([0.9, 0.8, 0.2, 0.95]), np.array([1, 1, 0, 0])  # a legitimate row on top
    t = choose_threshold(p, y, 0.0)
    assert t > 0.95 and _rates(p, y, t)[1] == 0.0
    assert choose_threshold(p, y, 0.5) == choose_threshold(p, y)
    with pytest.raises(ValueError, match="max_fpr"):
        choose_threshold(p, y, 1.5)
