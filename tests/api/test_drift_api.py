"""GET /v1/drift and the drift metrics through the in-process app (fake backend, real MiniLM embeddings)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from phishlens.explain.embed import MODEL_ID, Embedder
from phishlens.explain.reference import SCALAR_FEATURES, build_profile
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import load_bundle, write_manifest
from tests.fakes import expected_p, write_bundle
from tests.unit.test_drift_monitor import mails, sms

API = {"Authorization": "Bearer k-user"}
ADMIN = {"X-API-Key": "k-admin"}
WINDOW = 20
SECRET = "xylophonequartz"  # appears in one request: must never come back


@pytest.fixture(scope="module")
def embedder():
    return Embedder(max_tokens=64)


def test_minilm_embeddings(embedder):
    e = embedder(["reset your bank password now", "reset your bank password today", "lunch at noon?"])
    assert e.shape == (3, 384) and abs(float((e[0] ** 2).sum()) - 1.0) < 1e-4
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


@pytest.fixture(scope="module")
def root(tmp_path_factory, tokenizer, smollm2_base, embedder):
    root = tmp_path_factory.mktemp("drift-api")
    path = write_bundle(root, "default", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)
    texts = sms(120, seed=1)
    y = [" urgent" in " " + t for t in texts]
    prof = build_profile(
        "default",
        texts,
        [expected_p(v) for v in y],
        y,
        embedder(texts),
        calibration_prior=0.5,
        embed_model=MODEL_ID,
        embed_max_tokens=64,
        windows=(WINDOW,),
        n_sims=300,
    )
    write_manifest(path, load_bundle(path).manifest.model_copy(update={"extras": prof.save(path)}))
    write_bundle(root, "alt", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)
    return root


@pytest.fixture(scope="module")
def client(root, tokenizer, smollm2_base, tmp_path_factory):
    from tests.fakes import FakeBackend

    settings = Settings(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        drift_window=WINDOW,
        drift_eval_every=5,
        drift_state_dir=tmp_path_factory.mktemp("drift-state"),
    )
    with TestClient(create_app(settings, backend=FakeBackend(tokenizer, smollm2_base.sha256))) as c:
        yield c


def classify(client, texts, adapters=("default", "alt")):
    for i in range(0, len(texts), 8):
        r = client.post(
            "/v1/classify", json={"input": texts[i : i + 8], "adapters": list(adapters)}, headers=API
        )
        assert r.status_code == 200, r.text
    assert client.app.state.runtime.drift.flush(600)  # MiniLM on a loaded 2-core machine


def drift(client) -> dict:
    r = client.get("/v1/drift", headers=API)
    assert r.status_code == 200, r.text
    return {d["adapter"]: d for d in r.json()["data"]}


def test_drift_needs_api_key(client):
    assert client.get("/v1/drift").status_code == 401


def test_drift_report_and_metrics(client):
    d = drift(client)
    assert d["alt"]["status"] == "no_reference" and "augment" in d["alt"]["detail"]
    assert d["default"]["status"] == "warming_up" and d["default"]["window_texts"] == 0

    classify(client, sms(WINDOW, seed=5) + [f"lunch {SECRET} tomorrow"])
    d = drift(client)["default"]
    assert d["status"] == "ok" and not d["alert"] and d["window_texts"] == WINDOW
    assert d["calibrated_window"] == WINDOW and d["texts_seen"] == WINDOW + 1
    stats = {f["feature"]: f for f in d["features"]}
    assert set(stats) == set(SCALAR_FEATURES) | {"embedding"}
    assert all(f["threshold"] > 0 for f in stats.values())
    pv = d["prevalence"]
    assert pv["texts"] == WINDOW and pv["calibration"] == 0.5 and pv["low"] <= pv["estimate"] <= pv["high"]

    text = client.get("/metrics").text
    for name in (
        'phishlens_drift_statistic{adapter="default",feature="embedding"}',
        'phishlens_drift_statistic{adapter="default",feature="score"}',
        'phishlens_drift_threshold{adapter="default",feature="html"}',
        'phishlens_drift_alert{adapter="default"} 0.0',
        'phishlens_drift_prevalence{adapter="default"}',
        'phishlens_drift_prevalence_low{adapter="default"}',
        f'phishlens_drift_window_texts{{adapter="default"}} {float(WINDOW)}',
        'phishlens_drift_feature_quantile_bucket{adapter="default",feature="length",le="0.1"}',
        'phishlens_drift_feature_quantile_count{adapter="default",feature="non_ascii_ratio"} 21.0',
        'phishlens_ood_score_bucket{adapter="default",le="1.0"}',
        'phishlens_ood_score_count{adapter="default"} 21.0',
    ):
        assert name in text, name
    assert 'phishlens_drift_alert{adapter="alt"}' not in text
    # per-style traffic, as the input pipeline saw it (plain strings: detected)
    assert f'phishlens_drift_texts_total{{adapter="default",style="sms"}} {float(WINDOW + 1)}' in text
    assert 'phishlens_drift_texts_total{adapter="default",style="email"}' not in text

    classify(client, mails(WINDOW, seed=2))
    assert (
        f'phishlens_drift_texts_total{{adapter="alt",style="email"}} {float(WINDOW)}'
        in client.get("/metrics").text
    )
    r = client.get("/v1/drift", headers=API)
    assert SECRET not in r.text  # aggregate word counts only; a one-off word never surfaces
    d = {x["adapter"]: x for x in r.json()["data"]}["default"]
    assert d["status"] == "drift" and d["alert"] and d["most_shifted"]
    assert d["typical_live"] and all(w["log_odds"] > 0 for w in d["typical_live"])
    assert 'phishlens_drift_alert{adapter="default"} 1.0' in client.get("/metrics").text

    from phishlens.clients import PhishlensClient

    with PhishlensClient("http://testserver", api_key="k-user", http_client=client) as c:
        by_name = {x.adapter: x for x in c.drift()}  # the client mirrors the wire schema
    assert by_name["default"].alert and by_name["alt"].status == "no_reference"
    assert by_name["default"].features[0].threshold > 0 and by_name["default"].prevalence.texts == WINDOW


def test_unload_removes_series(client):
    assert client.delete("/v1/adapters/default", headers=ADMIN).status_code == 200
    text = client.get("/metrics").text
    assert 'phishlens_drift_statistic{adapter="default"' not in text
    assert 'phishlens_ood_score_count{adapter="default"}' not in text
    assert 'phishlens_drift_prevalence{adapter="default"}' not in text
    assert 'phishlens_drift_texts_total{adapter="default"' not in text
    assert "default" not in drift(client)
