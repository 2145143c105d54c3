"""Drift statistics on synthetic data with known shifts; threshold calibration hits its false-alarm target."""

from __future__ import annotations

import numpy as np
import pytest

from phishlens.explain import drift as D
from phishlens.explain import drift_stats as S
from phishlens.explain.drift_calibration import PRIOR_GRID, RowSet, calibrate
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


def labelled(n: int, prior: float, rng: np.random.Generator, shift: float = 0.0):
    """Rows whose score is the exact posterior at prior 0.5 (calibrated), a class-dependent style feature and
    class-dependent embeddings; `shift` moves both classes' features (covariate shift), not the score."""
    y = (rng.random(n) < prior).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    p = 1 / (1 + np.exp(-2.0 * x))  # log f1/f0 = 2x for N(+-1, 1): calibrated at prior 0.5
    style = rng.normal(np.where(y == 1, 3.0, 0.0) + shift, 1.0)
    emb = unit(rng.normal(size=(n, 8)) + np.outer(y, np.ones(8)) * 0.8 + shift)
    return y, p, style, emb


def reweighted_stats(ref_y, ref_style, ref_emb, p, style, emb) -> tuple[float, float, float, float]:
    """(prior estimate, PSI of style vs the reweighted reference, vs the pooled one, reweighted MMD²)."""
    from phishlens.explain.prior import mle_prior

    pi = float(mle_prior(p, 0.5))
    edges = D.decile_edges(ref_style)
    by_class = np.stack([D.bin_props(ref_style[ref_y == c], edges) for c in (0, 1)])
    gamma = D.rbf_gamma(ref_emb)
    km = D.KernelMeans.of(ref_emb, ref_y, gamma)
    return (
        pi,
        D.psi(style, D.mixture_props(by_class, pi), edges),
        D.psi(style, D.bin_props(ref_style, edges), edges),
        D.mmd2_prior(emb, ref_emb, ref_y, gamma, km, pi),
    )


def test_prevalence_change_alone_does_not_move_the_reweighted_statistics():
    rng = np.random.default_rng(5)
    ry, _, rs, re = labelled(1000, 0.5, rng)
    _, p, s, e = labelled(300, 0.02, rng)
    pi, psi_w, psi_pooled, mmd_w = reweighted_stats(ry, rs, re, p, s, e)
    assert pi < 0.06 and psi_w < 0.1 and psi_pooled > 0.5  # the pooled reference calls a wave "drift"
    gamma = D.rbf_gamma(re)
    assert mmd_w < 0.01 < D.mmd2(e, re, gamma)
    # a covariate shift at the same prevalence still moves both
    _, p2, s2, e2 = labelled(300, 0.02, rng, shift=1.0)
    _, psi_w2, _, mmd_w2 = reweighted_stats(ry, rs, re, p2, s2, e2)
    assert psi_w2 > 0.3 and mmd_w2 > 5 * max(mmd_w, 0.005)


def test_mixture_ks_and_quantiles_are_uniform_under_label_shift():
    rng = np.random.default_rng(6)
    ry, _, rs, _ = labelled(4000, 0.5, rng)
    by_class = (np.sort(rs[ry == 0]), np.sort(rs[ry == 1]))
    _, _, s, _ = labelled(4000, 0.05, rng)
    assert D.ks_mixture(s, by_class, 0.05) < 0.04 and D.ks(s, np.sort(rs)) > 0.3
    u = D.reference_quantile_mixture(s, by_class, 0.05, rng)
    assert np.allclose(np.histogram(u, bins=10, range=(0, 1))[0] / len(u), 0.1, atol=0.02)


def test_calibrated_thresholds_hold_the_false_alarm_rate_at_every_prevalence():
    """Fresh in-distribution windows at prevalences from 1 % to 90 % (not the simulated ones) raise the
    alert rule at about the target rate or less; with alpha = 0.2 the rate is measurable in 60 windows."""
    rng = np.random.default_rng(3)
    ry, rp, rs, re = labelled(400, 0.5, rng)
    scored = RowSet(np.stack([rp, D.binary_entropy(rp)], 1), ry, ("score", "uncertainty"))
    styled = RowSet(rs[:, None], ry, ("length",), re)
    (cal,) = calibrate(scored, styled, 0.5, [100], alpha=0.2, n_sims=300, seed=0)
    assert set(cal.thresholds) == {"score", "uncertainty", "length", "embedding"}
    assert cal.false_alarm_rate <= 0.2 and set(cal.false_alarm_by_prior) == set(PRIOR_GRID)
    thr = cal.thresholds
    edges = {f: D.decile_edges(v) for f, v in (("score", rp), ("length", rs))}
    props = {
        f: np.stack([D.bin_props(v[ry == c], edges[f]) for c in (0, 1)])
        for f, v in (("score", rp), ("length", rs))
    }
    gamma = D.rbf_gamma(re)
    km = D.KernelMeans.of(re, ry, gamma)
    from phishlens.explain.prior import mle_prior

    for prior in (0.01, 0.13, 0.7):
        fired = 0
        for _ in range(60):
            _, p, s, e = labelled(100, prior, rng)
            pi = float(mle_prior(p, 0.5))
            over = {
                "score": D.psi(p, D.mixture_props(props["score"], pi), edges["score"]) > thr["score"],
                "length": D.psi(s, D.mixture_props(props["length"], pi), edges["length"]) > thr["length"],
                "embedding": D.mmd2_prior(e, re, ry, gamma, km, pi) > thr["embedding"],
            }
            fired += D.drift_rule(over)
        assert fired <= 18, (prior, fired)  # target 20 % (12 of 60); binomial slack, at most 30 %


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
    y, p, _, emb = labelled(120, 0.5, rng)
    texts = [
        ("WIN cash at http://x.example.com " if c else "meeting notes ") + str(i) for i, c in enumerate(y)
    ]
    ye, _, _, emb_e = labelled(200, 0.5, rng)
    extra = [("prize claim now " if c else "lunch at noon ") + str(i) for i, c in enumerate(ye)]
    prof = build_profile(
        "a",
        texts,
        p,
        y,
        emb.astype(np.float32),
        calibration_prior=0.5,
        extra_texts=extra,
        extra_labels=ye,
        extra_embeddings=emb_e.astype(np.float32),
        embed_model="m",
        n_sims=100,
        windows=(50, 100),
    )
    assert prof.n_rows == 120 and prof.n_style_rows == 320 and prof.prior.calibration == 0.5
    assert len(prof.features["score"].sample_by_class[1]) == int(y.sum())  # scores: held-out rows only
    assert len(prof.features["length"].sample_by_class[1]) == int(y.sum() + ye.sum())
    files = prof.save(tmp_path)
    assert files == {"reference": "reference.json", "reference_embeddings": "reference.safetensors"}
    back = ReferenceProfile.load(tmp_path / "reference.json")
    assert set(back.features) == set(SCALAR_FEATURES) and set(back.thresholds[100]) == set(FEATURES)
    assert back.thresholds == prof.thresholds and back.embedding is not None
    assert (
        np.allclose(back.embedding.vectors[:120], emb, atol=1e-3)
        and back.embedding.labels.sum() == y.sum() + ye.sum()
    )
    assert back.embedding.kernel == prof.embedding.kernel and back.prior == prof.prior
    assert back.thresholds_for(80) == (50, prof.thresholds[50])
    assert back.thresholds_for(1000)[0] == 100 and back.thresholds_for(10)[0] == 50
    counts, n = back.word_counts(0.0)
    assert n == 320 and counts["meeting"] > 0 and counts["prize"] == 0  # phishing words vanish at prior 0
    with pytest.raises(ValueError, match="one row per text"):
        build_profile("a", texts, p[:-1], y, None)


def test_profile_refuses_unknown_format(tmp_path):
    (tmp_path / "reference.json").write_text('{"format": 1}')  # the pre-prior format: rebuild it
    from phishlens.explain.reference import ReferenceError

    with pytest.raises(ReferenceError, match="augment"):
        ReferenceProfile.load(tmp_path / "reference.json")


def test_statistic_classes_match_the_functions_and_their_vectorised_simulation():
    """PSI and MMD as plug-in classes: the live value is the functional statistic, and the vectorised
    `simulate` calibration uses equals the generic per-window loop."""
    rng = np.random.default_rng(6)
    ry, _, rs, re = labelled(300, 0.5, rng)
    _, _, hs, he = labelled(200, 0.5, rng)
    psi = S.PSI.fit(rs, ry)
    edges = D.decile_edges(rs)
    by_class = np.stack([D.bin_props(rs[ry == c], edges) for c in (0, 1)])
    assert psi(hs[:50], 0.3) == D.psi(hs[:50], D.mixture_props(by_class, 0.3), edges)
    gamma = D.rbf_gamma(re)
    mmd = S.MMD.fit(re, ry, gamma=gamma)
    assert mmd(he[:50], 0.3) == D.mmd2_prior(he[:50], re, ry, gamma, D.KernelMeans.of(re, ry, gamma), 0.3)
    draws, priors = rng.integers(0, 200, size=(7, 40)), rng.uniform(0.05, 0.9, 7)
    for stat, held in ((psi, hs), (mmd, he)):
        fast = stat.simulate(held, draws, priors)
        slow = S.DriftStatistic.simulate(stat, held, draws, priors)
        # MMD: the generic loop leaves out pairs of identical rows by value, the vectorised one by index
        # (the same here: the rows are continuous and distinct)
        assert np.allclose(fast, slow, atol=1e-9), (stat.name, fast, slow)


class MeanGap(S.DriftStatistic):
    """A new scalar statistic, written as the module docstring says: one class (and its registry entry)."""

    name = "mean_gap"
    kind = "scalar"

    def __init__(self, means: np.ndarray) -> None:
        self.means = means  # [legitimate, phishing] reference means

    @classmethod
    def fit(cls, ref, y, **options):
        return cls(np.array([ref[y == 0].mean(), ref[y == 1].mean()]))

    def __call__(self, window, prior):
        return float(abs(np.mean(window) - (prior * self.means[1] + (1 - prior) * self.means[0])))


def test_a_new_statistic_is_one_class(tmp_path, monkeypatch):
    monkeypatch.setitem(S.STATISTICS, MeanGap.name, MeanGap)
    rng = np.random.default_rng(7)
    y, p, _, emb = labelled(120, 0.5, rng)
    texts = [
        ("WIN cash at http://x.example.com " if c else "meeting notes ") + str(i) for i, c in enumerate(y)
    ]
    prof = build_profile(
        "a",
        texts,
        p,
        y,
        emb.astype(np.float32),
        calibration_prior=0.5,
        n_sims=60,
        windows=(50,),
        statistics={"scalar": "mean_gap"},
    )
    prof.save(tmp_path)
    back = ReferenceProfile.load(tmp_path / "reference.json")
    assert back.statistics == {"scalar": "mean_gap", "embedding": "mmd2"}
    stat = back.statistic("length")
    assert isinstance(stat, MeanGap) and isinstance(back.statistic("embedding"), S.MMD)
    # refitted from the stored per-class samples: the same means the builder fitted
    lengths = np.log1p([len(t) for t in texts])  # the `length` feature is log1p(chars)
    assert np.allclose(stat.means, [lengths[y == 0].mean(), lengths[y == 1].mean()])
    thr = back.thresholds[50]["length"]
    assert thr > 0 and stat(lengths[:50], 0.5) < 10 * thr  # calibrated on its own scale (no PSI floor)
    monkeypatch.delitem(S.STATISTICS, MeanGap.name)
    from phishlens.explain.reference import ReferenceError

    with pytest.raises(ReferenceError, match="mean_gap"):  # a server that lacks the class refuses the profile
        ReferenceProfile.load(tmp_path / "reference.json")


def test_profiles_without_the_statistics_key_use_psi_and_mmd(tmp_path):
    rng = np.random.default_rng(8)
    y, p, _, emb = labelled(80, 0.5, rng)
    texts = [("WIN http://x.example.com " if c else "notes ") + str(i) for i, c in enumerate(y)]
    build_profile("a", texts, p, y, emb.astype(np.float32), n_sims=40, windows=(50,)).save(tmp_path)
    import json

    doc = json.loads((tmp_path / "reference.json").read_text())
    del doc["statistics"]  # as in the bundles built before the key existed
    (tmp_path / "reference.json").write_text(json.dumps(doc))
    back = ReferenceProfile.load(tmp_path / "reference.json")
    stat = back.statistic("score")
    fr = back.features["score"]
    assert isinstance(stat, S.PSI) and list(stat.edges) == fr.edges  # the stored bins, not a refit
    assert stat(np.array(fr.sample_by_class[1]), 0.9) == D.psi(
        np.array(fr.sample_by_class[1]), D.mixture_props(fr.props, 0.9), np.asarray(fr.edges)
    )
