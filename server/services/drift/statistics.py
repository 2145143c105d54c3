"""Drift statistics of one live window against its reference (DESIGN.md §6), as the typed state `/v1/drift`
reports per adapter (`.report`).

Label shift first: the window's phishing prevalence is estimated from the calibrated scores
(explain.prior); every feature's statistic (the one its thresholds were calibrated with,
`ReferenceProfile.statistic`) then compares the window with the reference mixed at that prevalence, so a
phishing wave is not drift.
"""

from __future__ import annotations

import time

import numpy as np

from phishlens.explain import drift as D
from phishlens.explain.prior import em_prior
from phishlens.explain.reference import SCALAR_FEATURES

from .report import AdapterDrift, FeatureDrift, Prevalence
from .window import LiveWindow


def evaluate(w: LiveWindow, window_size: int) -> tuple[AdapterDrift, dict[str, float]]:
    """(the window's drift state, the thresholds it was judged by); updates `w.prior` to the new estimate."""
    ref = w.ref
    assert ref is not None
    n = len(w.scalars)
    cal_w, thr = ref.thresholds_for(window_size)
    feats: list[FeatureDrift] = []
    prevalence = None
    if n >= 2:
        x = np.stack(w.scalars)
        prevalence = Prevalence.of(em_prior(x[:, 0], ref.prior.calibration), ref.prior.calibration)
        pi = w.prior = prevalence.estimate
        for j, f in enumerate(SCALAR_FEATURES):
            stat = ref.statistic(f)(x[:, j], pi)
            ks = D.ks_mixture(x[:, j], ref.features[f].sorted, pi)
            feats.append(FeatureDrift(f, stat, thr[f], stat > thr[f], ks))
        if ref.embedding is not None and len(w.embeddings) >= 2 and "embedding" in thr:
            stat = ref.statistic("embedding")(np.stack(w.embeddings), pi)
            feats.append(FeatureDrift("embedding", stat, thr["embedding"], stat > thr["embedding"]))
    full = n >= window_size
    alert = full and D.drift_rule({f.feature: f.over for f in feats})
    ranked = sorted(feats, key=lambda f: -(f.statistic / f.threshold if f.threshold > 0 else 0.0))
    ref_df, ref_n = ref.word_counts(w.prior)
    live_top, ref_top = D.typical_words(w.live_df, w.live_n, ref_df, ref_n)
    report = AdapterDrift(
        w.name,
        w.sha,
        ("drift" if alert else "ok") if full else "warming_up",
        window_size,
        n,
        w.texts_seen,
        cal_w,
        alert,
        feats,
        prevalence,
        [f.feature for f in ranked if f.over] + [f.feature for f in ranked if not f.over],
        live_top,
        ref_top,
        time.time(),
    )
    return report, thr
