"""A small run of benchmarks/drift_live.py: the shipped `specialist-sms` bundle and its reference, REAL
SmolLM2 scores (HF, as served) and real MiniLM embeddings of real test rows, fed to the real drift monitor.

- in-distribution SMS at 5 % and at 50 % phishing: no drift alert (the reference is balanced: before the
  reweighting to the estimated prevalence, 13 % already alerted), and the prevalence interval covers the
  truth;
- a phishing wave (2 % -> 30 %): the prevalence rule of PhishlensPrevalenceShift fires, the drift alert
  does not;
- e-mail, a style the specialist never saw: the drift alert within 200 texts;
- CBPE on a 13 % stream, adjusted to the estimated prevalence, matches the precision the true labels give.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ADAPTER = "specialist-sms"
WINDOW, EVERY, BATCH = 100, 20, 10


def bench():
    spec = importlib.util.spec_from_file_location("drift_live", REPO / "benchmarks" / "drift_live.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def live(splits, smollm2_base):
    from phishlens.explain.reference import FORMAT, ReferenceProfile
    from phishlens.training.contract.bundle import load_bundle

    b = load_bundle(REPO / "adapters" / ADAPTER)
    ref_path = b.path / b.manifest.extras["reference"]
    import json

    if json.loads(ref_path.read_text()).get("format") != FORMAT:
        pytest.skip(f"adapters/{ADAPTER} has an old reference profile (phishlens augment --only reference)")
    m = bench()
    # more distinct legitimate texts than a window: at 5 % a window is nearly all legitimate
    groups = m.pools(b.manifest, splits, per_class=30, unseen=0, other=30, legit_per_class=160)
    groups = {"in": groups["in"], "style:email": groups["style:email"]}
    every = [r for g in groups.values() for r in g]
    cache = REPO / "runs" / "drift_live"  # keyed by adapter weights + calibration + prompt (as the benchmark)
    scores = m.score_all(b, every, cache)  # every text scored once through the adapter, then cached
    embs = m.embed_all(every, cache, 128)
    return m, b, ReferenceProfile.load(ref_path), groups, scores, embs


def run(live, records):
    m, b, _, _, scores, embs = live
    return m.replay(b, m.Stream("s", records), scores, embs, WINDOW, EVERY, BATCH)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("prevalence", [0.05, 0.5])
def test_in_distribution_never_alerts_whatever_the_prevalence(live, prevalence):
    m, _, _, groups, _, _ = live
    ev = [
        e
        for e in run(live, m.at_prevalence(groups["in"], prevalence, 400, random.Random(1)))
        if e[0] >= WINDOW
    ]
    assert len(ev) >= 15
    assert not any(e[1] for e in ev), [(e[0], e[5]) for e in ev if e[1]]
    covered = np.mean([e[3] <= prevalence <= e[4] for e in ev])
    assert covered >= 0.7, [(round(e[2], 3), round(e[3], 3), round(e[4], 3)) for e in ev]


@pytest.mark.data
@pytest.mark.slow
def test_wave_raises_the_prevalence_rule_not_drift(live):
    m, _, _, groups, _, _ = live
    rng = random.Random(2)
    stream = m.at_prevalence(groups["in"], 0.02, 300, rng) + m.at_prevalence(groups["in"], 0.3, 200, rng)
    ev = [e for e in run(live, stream) if e[0] >= WINDOW]
    assert not any(e[1] for e in ev)
    fired = m.prevalence_rule_fires(ev, 300)
    assert fired is not None and fired <= WINDOW
    assert m.prevalence_rule_fires([e for e in ev if e[0] <= 300], 200) is None  # quiet before the wave


@pytest.mark.data
@pytest.mark.slow
def test_unseen_style_alerts_within_200_texts(live):
    m, _, _, groups, _, _ = live
    rng = random.Random(3)
    warm = m.at_prevalence(groups["in"], 0.05, WINDOW, rng)
    novel = [rng.choice(groups["style:email"]) for _ in range(200)]
    ev = run(live, warm + novel)
    first = next((e for e in ev if e[1]), None)
    assert first is not None and WINDOW < first[0] <= WINDOW + 200, ev[-3:]


@pytest.mark.data
@pytest.mark.slow
def test_cbpe_follows_the_prevalence(live):
    """CBPE from the served probabilities alone assumes the calibration rows' prevalence (50 %); adjusted to
    the estimated prevalence it matches the precision the stream's true labels give."""
    m, b, ref, groups, scores, _ = live
    rows = m.at_prevalence(groups["in"], 0.13, 2000, random.Random(4))
    _, cbpe_p, true_p, cbpe_r, true_r, _, _ = m.cbpe_vs_truth(b, rows, scores, ref)
    assert abs(cbpe_p - true_p) < 0.1 and abs(cbpe_r - true_r) < 0.15, (cbpe_p, true_p, cbpe_r, true_r)


def test_streams_repeat_no_text_when_the_pool_allows():
    """A window resampled from a small pool repeats texts (real traffic does not), which fattens the
    embedding statistic's tail: specialist-url's one false drift alert (README "Drift on real scores").
    Streams are drawn without replacement whenever the pool holds enough texts of each class."""
    from types import SimpleNamespace

    m = bench()
    pool = [SimpleNamespace(uid=f"p{i}", label="phishing") for i in range(60)]
    pool += [SimpleNamespace(uid=f"l{i}", label="legitimate") for i in range(400)]
    rng = random.Random(0)
    s = m.at_prevalence(pool, 0.05, 400, rng)
    assert m.distinct(s) and sum(r.label == "phishing" for r in s) == 20
    t = m.at_prevalence(pool, 0.1, 20, rng, used=frozenset(r.uid for r in s))  # 20 legitimate texts left
    assert m.distinct(s + t) and sum(r.label == "phishing" for r in t) == 2
    # a pool too small for the stream: resampled as before, `used` ignored
    big = m.at_prevalence(pool, 0.5, 200, rng, used=frozenset(r.uid for r in s))
    assert not m.distinct(big) and sum(r.label == "phishing" for r in big) == 100
