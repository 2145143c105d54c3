"""CBPE arithmetic (explain/performance.py) and the bounded label ledger (services/feedback.py)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from phishlens.explain.performance import (
    Confusion,
    ExpectedWindow,
    OutcomeWindow,
    expected_confusion,
    outcome,
)
from phishlens.server.services.feedback import LabelLedger


def test_expected_confusion_by_hand():
    # predicted phishing at p=0.9 and 0.6; predicted legitimate at p=0.2
    c = expected_confusion([(0.9, True), (0.6, True), (0.2, False)])
    assert np.allclose([c.tp, c.fp, c.tn, c.fn], [1.5, 0.5, 0.8, 0.2], atol=1e-12)
    assert math.isclose(c.precision, 1.5 / 2.0) and math.isclose(c.recall, 1.5 / 1.7)
    assert math.isclose(c.n, 3.0)


def test_undefined_ratios_are_nan_not_zero():
    assert math.isnan(Confusion().precision) and math.isnan(Confusion().recall)
    assert math.isnan(expected_confusion([(0.3, False)]).precision)  # nothing predicted positive


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_rejects_non_probabilities(p):
    with pytest.raises(ValueError):
        expected_confusion([(p, True)])


def test_cbpe_matches_realised_metrics_when_calibrated():
    """Labels drawn from the stated probabilities: expected precision/recall converge on the realised ones."""
    rng = np.random.default_rng(0)
    p = rng.beta(0.6, 0.6, size=20_000)
    y = rng.random(p.size) < p  # calibrated by construction
    pred = p >= 0.5
    est = expected_confusion(zip(p.tolist(), pred.tolist()))
    real = Confusion(*(float(np.sum(m)) for m in (pred & y, pred & ~y, ~pred & ~y, ~pred & y)))
    assert abs(est.precision - real.precision) < 0.01 and abs(est.recall - real.recall) < 0.01


def test_cbpe_follows_a_prevalence_change_with_the_calibration_prior():
    """Scores calibrated on balanced rows, served on traffic with 3 % phishing: plain CBPE promises the
    balanced precision; adjusted to the window's estimated prevalence it matches the realised one."""
    rng = np.random.default_rng(7)
    n = 20_000
    y = rng.random(n) < 0.03
    x = rng.normal(np.where(y, 1.5, -1.5), 1.0)
    p = 1 / (1 + np.exp(-3.0 * x))  # exact posterior at prior 0.5 (log f1/f0 = 3x for N(+-1.5, 1))
    pred = p >= 0.5
    real_p = float((pred & y).sum() / pred.sum())
    real_r = float((pred & y).sum() / y.sum())
    plain, adjusted = ExpectedWindow(n), ExpectedWindow(n, calibration_prior=0.5)
    for pi, di in zip(p.tolist(), pred.tolist()):
        plain.add(pi, di)
        adjusted.add(pi, di)
    assert abs(plain.confusion.precision - real_p) > 0.3  # ~0.93 promised, ~0.3 real
    assert (
        abs(adjusted.confusion.precision - real_p) < 0.03 and abs(adjusted.confusion.recall - real_r) < 0.03
    )
    assert abs(adjusted.prevalence - 0.03) < 0.005 and np.isnan(plain.prevalence)


def test_expected_window_slides_and_stays_exact():
    rng = random.Random(1)
    w = ExpectedWindow(50)
    items = [(rng.random(), rng.random() < 0.5) for _ in range(537)]
    for p, pred in items:
        w.add(p, pred)
    assert len(w) == 50
    ref = expected_confusion(items[-50:])
    got = w.confusion
    assert np.allclose([got.tp, got.fp, got.tn, got.fn], [ref.tp, ref.fp, ref.tn, ref.fn], atol=1e-9)


def test_outcome_window_counts_last_n():
    assert [outcome(True, True), outcome(True, False), outcome(False, False), outcome(False, True)] == [
        "tp",
        "fp",
        "tn",
        "fn",
    ]
    w = OutcomeWindow(3)
    for o in ("fp", "fp", "tp", "tp", "fn"):
        w.add(o)  # type: ignore[arg-type]
    c = w.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 0, 0, 1) and len(w) == 3
    assert c.precision == 1.0 and math.isclose(c.recall, 2 / 3)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _labels(n: int) -> dict[tuple[int, str], str]:
    return {(i, "a"): "phishing" for i in range(n)}


def test_ledger_expires_by_age():
    clock = Clock()
    s = LabelLedger(ttl_s=10, max_items=100, clock=clock)
    s.add(b"r1", _labels(2))
    clock.t = 5
    s.add(b"r2", _labels(1))
    clock.t = 10.5
    assert s.get(b"r1") == {} and s.get(b"r2") == {(0, "a"): "phishing"} and s.items == 1
    clock.t = 15.5
    assert s.get(b"r2") == {} and len(s) == 0 and s.items == 0


def test_ledger_keeps_first_label_and_caps_total_oldest_first():
    s = LabelLedger(ttl_s=1e9, max_items=10, clock=Clock())
    s.add(b"r", {(0, "a"): "phishing"})
    s.add(b"r", {(0, "a"): "legitimate", (1, "a"): "legitimate"})  # the first label of (0, a) stands
    assert s.get(b"r") == {(0, "a"): "phishing", (1, "a"): "legitimate"} and s.items == 2
    for k in range(8):
        s.add(f"r{k}".encode(), _labels(3))
    assert s.items <= 10 and len(s) == 3
    assert [bool(s.get(f"r{k}".encode())) for k in range(8)] == [False] * 5 + [True] * 3
