"""Source-mix-robust drift thresholds (issue 19): traffic from the adapter's own training sources in another
blend does not raise the drift alert, a source it never saw does; the plain calibration alerts on both.

Synthetic corpora with real texts (style features), per-source embedding clusters and calibrated-looking
scores go through the real profile builder and the live monitor's `evaluate` on a real `LiveWindow`.
"""

from __future__ import annotations

import numpy as np
import pytest

from phishlens.explain.reference import ReferenceProfile, build_profile, scalar_matrix
from phishlens.server.services.drift.statistics import evaluate
from phishlens.server.services.drift.window import LiveWindow

DIM = 16
WINDOW = 100
# corpus -> (label, text template); the two training sources of each class look nothing alike
SOURCES = {
    "notes": ("legitimate", "meeting notes for the team, item {i:05d}"),
    "digest": (
        "legitimate",
        "Weekly digest {i:05d}\n- 3 new posts in 2024\n- 12 comments\n- see the archive for 1998-2023\nbye",
    ),
    "prize": ("phishing", "WIN cash now at http://x.example.com/{i:05d} !!!"),
    "bank": (
        "phishing",
        "Your account {i:05d} is locked, verify at http://bank.example.net/login?id={i:05d}",
    ),
    # never in the reference: a legitimate source of another kind
    "legal": ("legitimate", "<html><b>NOTICE {i:05d}</b> TERMS AND CONDITIONS APPLY ÄÖÜ</html>"),
}


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(19)
    centres = {s: rng.normal(size=DIM) * 2.0 for s in SOURCES}

    def rows(source: str, n: int, start: int):
        label, template = SOURCES[source]
        texts = [template.format(i=start + i) for i in range(n)]
        emb = centres[source] + rng.normal(size=(n, DIM))
        emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
        logit = rng.normal(2.5 if label == "phishing" else -2.5, 1.0, n)
        return texts, 1.0 / (1.0 + np.exp(-logit)), emb, [label] * n, [source] * n

    return rows


def _profile(corpus, with_sources: bool) -> ReferenceProfile:
    val = [corpus(s, 50, 0) for s in ("notes", "digest", "prize", "bank")]
    extra = [corpus(s, 100, 1000) for s in ("notes", "digest", "prize", "bank")]

    def cat(parts, k):
        return [x for part in parts for x in part[k]]

    return build_profile(
        "mix",
        cat(val, 0),
        np.concatenate([v[1] for v in val]),
        cat(val, 3),
        np.concatenate([v[2] for v in val]),
        calibration_prior=0.5,
        extra_texts=cat(extra, 0),
        extra_labels=cat(extra, 3),
        extra_embeddings=np.concatenate([e[2] for e in extra]),
        windows=(WINDOW,),
        n_sims=400,
        seed=3,
        sources=cat(val, 4) if with_sources else None,
        extra_sources=cat(extra, 4) if with_sources else None,
    )


def _alerts(corpus, ref: ReferenceProfile, legit: dict[str, float], n_windows: int = 15) -> int:
    """Drift alerts over `n_windows` fresh windows at 20 % phishing (both training sources, even), the
    legitimate texts from the sources in `legit` in those shares; each judged by the live monitor's code."""
    fired = 0
    for k in range(n_windows):
        parts = [corpus("prize", 10, 5000 + 100 * k), corpus("bank", 10, 5000 + 100 * k)]
        parts += [corpus(s, round(share * 80), 5000 + 100 * k) for s, share in legit.items()]
        texts = [t for part in parts for t in part[0]]
        p = np.concatenate([part[1] for part in parts])
        w = LiveWindow("mix", "sha", ref, WINDOW, seed=k)
        w.add(scalar_matrix(texts, p), np.concatenate([part[2] for part in parts]), [set() for _ in texts])
        report, _ = evaluate(w, WINDOW)
        fired += report.alert
    return fired


def test_another_blend_of_the_training_sources_does_not_alert_a_new_source_does(corpus):
    robust, plain = _profile(corpus, True), _profile(corpus, False)
    assert robust.source_shift > 0 and plain.source_shift == 0.0
    assert robust.sources["legitimate"] == {"digest": 150, "notes": 150}
    # same rows, same seed: the perturbed blends raise the thresholds of what differs between the sources
    assert robust.thresholds[WINDOW]["embedding"] > plain.thresholds[WINDOW]["embedding"]
    reblend = {"notes": 0.8, "digest": 0.2}  # the reference blends them 50/50
    assert _alerts(corpus, robust, {"notes": 0.5, "digest": 0.5}) == 0
    assert _alerts(corpus, robust, reblend) == 0
    assert _alerts(corpus, plain, reblend) == 15  # the plain calibration calls a new blend drift
    # the tolerance is bounded (source_shift 0.5: each source keeps at least half its reference share)
    assert _alerts(corpus, robust, {"notes": 0.95, "digest": 0.05}) == 15
    new_source = {"notes": 0.45, "digest": 0.45, "legal": 0.1}  # 8 texts of 100
    assert _alerts(corpus, robust, new_source) == 15
    assert _alerts(corpus, plain, new_source) == 15


def test_profiles_without_sources_load_with_the_plain_calibration(corpus, tmp_path):
    import json

    robust = _profile(corpus, True)
    robust.save(tmp_path)
    back = ReferenceProfile.load(tmp_path / "reference.json")
    assert back.sources == robust.sources and back.source_shift == robust.source_shift
    doc = json.loads((tmp_path / "reference.json").read_text())
    del doc["sources"], doc["source_shift"]  # as in the bundles built before sources were recorded
    (tmp_path / "reference.json").write_text(json.dumps(doc))
    old = ReferenceProfile.load(tmp_path / "reference.json")
    assert old.sources == {} and old.source_shift == 0.0 and old.thresholds == robust.thresholds
    with pytest.raises(ValueError, match="one source per row"):
        build_profile("mix", ["a", "b"], [0.1, 0.9], [0, 1], None, sources=["x"])


@pytest.mark.parametrize("adapter", ["default", "specialist-email"])
def test_shipped_multi_source_references_are_calibrated_over_their_training_sources(adapter):
    """The builder passed every reference row's corpus (`phishlens augment --only reference`): the profile's
    sources are exactly the bundle's training sources, its thresholds calibrated over their blends."""
    from pathlib import Path

    from phishlens.explain.drift_calibration import SOURCE_SHIFT
    from phishlens.training.contract.bundle import load_bundle

    b = load_bundle(Path(__file__).resolve().parents[2] / "adapters" / adapter)
    ref = ReferenceProfile.load(b.path / b.manifest.extras["reference"])
    assert ref.source_shift == SOURCE_SHIFT
    seen = set(ref.sources["legitimate"]) | set(ref.sources["phishing"])
    assert seen == set(b.manifest.training_data.sources)
    assert sum(ref.sources["legitimate"].values()) + sum(ref.sources["phishing"].values()) == ref.n_style_rows
