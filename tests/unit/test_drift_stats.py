"""Drift statistics on synthetic data with known shifts; threshold calibration hits its false-alarm target."""

from __future__ import annotations

import numpy as np
import pytest
from phishlens.explain import drift as D
from phishlens.explain.reference import FEATURES, SCALAR_FEATURES, ReferenceProfile, build_profile
from phishlens.explain.style import STYLE_FEATURES, style_features, words


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_psi_and_ks_grow_with_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    edges = D.decile_edges(ref)
    props = D.bin_props(ref, edges)
    assert len(edges) == 9 and np.allclose(props, 0.1, atol=0.01)
    same, small, big = rng.normal(size=2000), rng.normal(0.3, 1, 2000), rng.normal(1.5, 1, 2000)
    psis = [D.psi(x, props, edges) for x in (same, small, big)]
    assert psis[0] < 0.02 < psis[1] < 0.25 < psis[2]
    kss = [D.ks(x, np.sort(ref)) for x in (same, small, big)]
    assert kss[0] < 0.05 and 0.08 < kss[1] < 0.2 and kss[2] > 0.45


def test_discrete_feature_bins_and_uniform_reference_quantiles():
    rng = np.random.default_rng(1)
    ref = (rng.random(4000) < 0.05).astype(float)  # html-like: mostly 0
    edges = D.decile_edges(ref)
    assert list(edges) == [0.0]  # ties collapse: bins {<=0} and {>0}
    u = D.reference_quantile((rng.random(4000) < 0.05).astype(float), np.sort(ref), rng)
    counts = np.histogram(u, bins=10, range=(0, 1))[0] / len(u)
    assert np.allclose(counts, 0.1, atol=0.02)  # randomised PIT: uniform even for a 0/1 feature


def test_mmd_separates_shifted_embeddings():
    rng = np.random.default_rng(2)
    ref = unit(rng.normal(size=(300, 16)))
    gamma = D.rbf_gamma(ref)
    same = unit(rng.normal(size=(100, 16)))
    shifted = unit(rng.normal(size=(100, 16)) + 1.0)
    m_same, m_shift = D.mmd2(same, ref, gamma), D.mmd2(shifted, ref, gamma)
    assert abs(m_same) < 0.01 and m_shift > 0.1
    kyy = D.offdiag_mean(D.rbf(ref, ref, gamma))
    assert np.isclose(D.mmd2(shifted, ref, gamma, kyy=kyy), m_shift)
    d_in = D.knn_distance(same, ref, 5)
    d_out = D.knn_distance(shifted, ref, 5)
    assert d_out.mean() > d_in.mean()


def test_calibrated_threshold_gives_target_false_alarm_rate():
    """One continuous feature, alpha = 0.1: fresh in-distribution windows exceed the threshold ~10 % of the
    time (at most: split-half calibration is slightly conservative)."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(2000, 1))
    (cal,) = D.calibrate(ref, ["x"], None, [100], alpha=0.1, n_sims=2000, seed=0)
    thr = cal.thresholds["x"]
    edges = D.decile_edges(ref[:, 0])
    props = D.bin_props(ref[:, 0], edges)
    rate = np.mean([D.psi(rng.normal(size=100), props, edges) > thr for _ in range(2000)])
    assert 0.03 <= rate <= 0.13, (rate, thr)
    # Bonferroni: with 4 statistics each gets alpha/4, so each threshold is higher
    (cal4,) = D.calibrate(np.hstack([ref] * 4), ["a", "b", "c", "d"], None, [100], alpha=0.1, n_sims=2000)
    assert cal4.thresholds["a"] > thr


def test_drift_rule():
    assert not D.drift_rule({"length": True, "score": False, "embedding": False})
    assert D.drift_rule({"length": True, "lines": True})
    assert D.drift_rule({"embedding": True})


def test_typical_words_needs_min_docs():
    live = {"bitcoin": 30.0, "wallet": 12.0, "lunch": 1.0, "rarename": 2.0}
    ref = {"lunch": 80.0, "meeting": 60.0, "wallet": 1.0}
    top_live, top_ref = D.typical_words(live, 40.0, ref, 200.0, min_docs=5)
    assert [w.word for w in top_live] == ["bitcoin", "wallet"]  # rare live words never surface
    assert top_ref[0].word in {"lunch", "meeting"} and all(w.log_odds < 0 for w in top_ref)


def test_style_features():
    f = dict(zip(STYLE_FEATURES, style_features("<html><b>WIN</b> 1000$ at http://x.example.com/a\nnow ü")))
    assert f["url_count"] == 1 and f["html"] == 3 and f["lines"] == 2
    assert f["digit_ratio"] > 0 and f["upper_ratio"] > 0 and f["non_ascii_ratio"] > 0
    assert words("Hello hello WORLD 42") == {"hello", "world"}


def test_profile_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    texts = [f"meeting notes {i} " * (1 + i % 4) for i in range(120)]
    emb = unit(rng.normal(size=(120, 8))).astype(np.float32)
    prof = build_profile("a", texts, rng.random(120), emb, embed_model="m", n_sims=200, windows=(50, 100))
    files = prof.save(tmp_path)
    assert files == {"reference": "reference.json", "reference_embeddings": "reference.safetensors"}
    back = ReferenceProfile.load(tmp_path / "reference.json")
    assert set(back.features) == set(SCALAR_FEATURES) and set(back.thresholds[100]) == set(FEATURES)
    assert back.thresholds == prof.thresholds and back.embedding is not None
    assert np.allclose(back.embedding.vectors, emb, atol=1e-3)
    assert back.thresholds_for(80) == (50, prof.thresholds[50])
    assert back.thresholds_for(1000)[0] == 100 and back.thresholds_for(10)[0] == 50
    assert "meeting" in back.words


def test_profile_refuses_unknown_format(tmp_path):
    (tmp_path / "reference.json").write_text('{"format": 99}')
    from phishlens.explain.reference import ReferenceError

    with pytest.raises(ReferenceError, match="format"):
        ReferenceProfile.load(tmp_path / "reference.json")
