"""POST /v1/feedback and the performance metrics, in-process (create_app + FakeBackend), plus the client."""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from phishlens.clients import AsyncPhishlensClient, PhishlensClient, ValidationError
from phishlens.clients.protocol.errors import AdapterNotFoundError, RequestNotFoundError
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests.fakes import FakeBackend, expected_p

API = {"Authorization": "Bearer k-user"}
ADMIN = {"X-API-Key": "k-admin"}
PHISHY, CLEAN = "verify your account, urgent action required", "see you at lunch tomorrow"


def settings_for(root, **kw) -> Settings:
    base = dict(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        max_batch=8,
        performance_window=4,
        feedback_window=3,
    )
    return Settings(**{**base, **kw})


@pytest.fixture()
def client(adapter_root, tokenizer, smollm2_base):
    backend = FakeBackend(tokenizer, smollm2_base.sha256)
    with TestClient(create_app(settings_for(adapter_root), backend=backend)) as c:
        yield c


def samples(c: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = c.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def metric(c: TestClient, name: str, **labels: str) -> float | None:
    return samples(c).get((name, tuple(sorted(labels.items()))))


def classify(c: TestClient, texts, **body) -> str:
    r = c.post("/v1/classify", json={"input": texts, **body}, headers=API)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def err(r, status, type_):
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == type_ and r.json()["error"]["message"]
    return r.json()["error"]["message"]


def test_feedback_counts_outcomes_and_exports_live_metrics(client):
    rid = classify(client, [PHISHY, CLEAN], adapters=["default", "alt"])
    r = client.post(
        "/v1/feedback",
        headers=API,
        json={
            "request_id": rid,
            "labels": [{"index": 0, "label": "phishing"}, {"index": 1, "label": "phishing"}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] == rid and body["recorded"] == 4 and body["duplicates"] == 0
    got = {(d["index"], d["adapter"]): (d["predicted"], d["outcome"], d["status"]) for d in body["data"]}
    assert got == {
        (0, "default"): ("phishing", "tp", "recorded"),
        (0, "alt"): ("phishing", "tp", "recorded"),
        (1, "default"): ("legitimate", "fn", "recorded"),
        (1, "alt"): ("legitimate", "fn", "recorded"),
    }
    for a in ("default", "alt"):
        assert metric(client, "phishlens_feedback_total", adapter=a, outcome="tp") == 1.0
        assert metric(client, "phishlens_feedback_total", adapter=a, outcome="fn") == 1.0
        assert metric(client, "phishlens_live_precision", adapter=a) == 1.0
        assert metric(client, "phishlens_live_recall", adapter=a) == 0.5


def test_expected_precision_recall_follow_served_probabilities(client):
    p_hi, p_lo = expected_p(True), expected_p(False)
    classify(client, [PHISHY, CLEAN])
    assert math.isclose(metric(client, "phishlens_expected_precision", adapter="default"), p_hi, abs_tol=1e-9)
    assert math.isclose(
        metric(client, "phishlens_expected_recall", adapter="default"), p_hi / (p_hi + p_lo), abs_tol=1e-9
    )
    assert metric(client, "phishlens_expected_window_texts", adapter="default") == 2
    classify(client, [CLEAN] * 5)  # the window (4) now holds only predicted-legitimate verdicts
    assert metric(client, "phishlens_expected_window_texts", adapter="default") == 4
    assert math.isnan(metric(client, "phishlens_expected_precision", adapter="default"))
    assert math.isclose(metric(client, "phishlens_expected_recall", adapter="default"), 0.0, abs_tol=1e-12)
    assert metric(client, "phishlens_expected_precision", adapter="alt") is None  # no traffic, no series


def test_feedback_is_idempotent(client):
    rid = classify(client, [CLEAN])
    first = client.post(
        "/v1/feedback", headers=API, json={"request_id": rid, "labels": [{"index": 0, "label": "legitimate"}]}
    ).json()
    assert first["recorded"] == 1 and first["data"][0]["outcome"] == "tn"
    again = client.post(
        "/v1/feedback", headers=API, json={"request_id": rid, "labels": [{"index": 0, "label": "legitimate"}]}
    ).json()
    assert again["recorded"] == 0 and again["duplicates"] == 1 and again["data"][0]["status"] == "duplicate"
    flip = client.post(
        "/v1/feedback", headers=API, json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]}
    ).json()
    assert flip["conflicts"] == 1 and flip["data"][0]["status"] == "conflict"  # the first label stands
    assert metric(client, "phishlens_feedback_total", adapter="default", outcome="tn") == 1.0
    assert metric(client, "phishlens_feedback_total", adapter="default", outcome="fn") is None


def test_feedback_errors(client):
    rid = classify(client, [PHISHY, CLEAN], adapter="alt")

    def post(body, headers=API):
        return client.post("/v1/feedback", headers=headers, json=body)

    msg = err(
        post({"request_id": "clf-" + "0" * 32, "labels": [{"index": 0, "label": "phishing"}]}),
        404,
        "request_not_found",
    )
    assert "unknown request id" in msg and "signature" in msg
    err(post({"request_id": "nope", "labels": [{"index": 0, "label": "phishing"}]}), 422, "validation_error")
    err(post({"request_id": rid, "labels": []}), 422, "validation_error")
    err(post({"request_id": rid, "labels": [{"index": 0, "label": "spam"}]}), 422, "validation_error")
    err(
        post({"request_id": rid, "labels": [{"index": 0, "label": "phishing", "text": "x"}]}),
        422,
        "validation_error",
    )
    assert "no text 2" in err(
        post({"request_id": rid, "labels": [{"index": 2, "label": "phishing"}]}), 422, "validation_error"
    )
    assert "not scored by 'default'" in err(
        post({"request_id": rid, "labels": [{"index": 0, "label": "phishing", "adapter": "default"}]}),
        422,
        "validation_error",
    )
    assert "contradicts" in err(
        post(
            {
                "request_id": rid,
                "labels": [
                    {"index": 1, "label": "phishing"},
                    {"index": 1, "label": "legitimate", "adapter": "alt"},
                ],
            }
        ),
        422,
        "validation_error",
    )
    err(
        post({"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]}, headers={}),
        401,
        "unauthorized",
    )
    # nothing was applied by the refused requests
    ok = post({"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]}).json()
    assert ok["recorded"] == 1


def test_verdicts_of_an_unloaded_adapter_are_stale_and_series_dropped(client):
    assert client.post("/v1/adapters", headers=ADMIN, json={"path": "spare"}).status_code == 201
    rid = classify(client, [PHISHY], adapter="spare")
    assert metric(client, "phishlens_expected_precision", adapter="spare") is not None
    assert client.delete("/v1/adapters/spare", headers=ADMIN).status_code == 200
    assert metric(client, "phishlens_expected_precision", adapter="spare") is None
    body = client.post(
        "/v1/feedback", headers=API, json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]}
    ).json()
    assert body["stale"] == 1 and body["recorded"] == 0
    assert metric(client, "phishlens_feedback_total", adapter="spare", outcome="tp") is None


def test_request_ids_expire(adapter_root, tokenizer, smollm2_base):
    app = create_app(
        settings_for(adapter_root, feedback_ttl_s=0.3), backend=FakeBackend(tokenizer, smollm2_base.sha256)
    )
    with TestClient(app) as c:
        rid = classify(c, [PHISHY])
        time.sleep(0.4)
        msg = err(
            c.post(
                "/v1/feedback",
                headers=API,
                json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]},
            ),
            404,
            "request_not_found",
        )
        assert "expired request id" in msg


def test_never_stores_request_text(client):
    secret = "urgent zq-secret-canary-7731 reset your password"
    rid = classify(client, [secret])
    fb = client.app.state.runtime.feedback
    assert "zq-secret-canary" not in repr(fb.ids.open(rid))  # the id carries verdicts, never text
    client.post(
        "/v1/feedback", headers=API, json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]}
    )
    assert "zq-secret-canary" not in repr(fb.ledger._entries)
    assert "zq-secret-canary" not in client.get("/metrics").text


def test_clients_send_feedback(client, adapter_root, tokenizer, smollm2_base):
    with PhishlensClient("http://testserver", api_key="k-user", http_client=client) as pc:
        resp = pc.classify([PHISHY, CLEAN], adapters=["default", "alt"])
        out = pc.feedback(resp.id, ["phishing", "legitimate"], adapter="alt")
        assert out.recorded == 2 and {(d.index, d.adapter, d.outcome) for d in out.data} == {
            (0, "alt", "tp"),
            (1, "alt", "tn"),
        }
        assert pc.feedback(resp.id, {1: "legitimate"}).recorded == 1  # default's verdict on text 1
        with pytest.raises(RequestNotFoundError) as e:  # its own class, not AdapterNotFoundError (a 404 too)
            pc.feedback("clf-" + "f" * 32, {0: "phishing"})
        assert e.value.status == 404 and e.value.type == "request_not_found"
        assert not isinstance(e.value, AdapterNotFoundError)
        with pytest.raises(ValidationError):
            pc.feedback(resp.id, [{"index": 5, "label": "phishing"}])

    app = create_app(settings_for(adapter_root), backend=FakeBackend(tokenizer, smollm2_base.sha256))

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncPhishlensClient("http://testserver", api_key="k-user", transport=transport) as c:
                resp = await c.classify(PHISHY)
                return await c.feedback(resp.id, [{"index": 0, "label": "legitimate"}])

    out = asyncio.run(go())
    assert out.recorded == 1 and out.data[0].outcome == "fp"


def test_cli_feedback_command(client, monkeypatch):
    import json

    from typer.testing import CliRunner

    from phishlens.clients import cli

    monkeypatch.setattr(
        cli,
        "client_factory",
        lambda url, api_key=None: PhishlensClient(url, api_key=api_key, http_client=client),
    )
    rid = classify(client, [PHISHY, CLEAN])
    runner = CliRunner()
    res = runner.invoke(cli.app, ["feedback", rid, "1=legitimate", "--api-key", "k-user"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    assert body["recorded"] == 1 and body["data"][0]["outcome"] == "tn"
    res = runner.invoke(cli.app, ["feedback", rid, "legitimate", "legitimate", "--api-key", "k-user"])
    assert res.exit_code == 0 and json.loads(res.output)["data"][0]["outcome"] == "fp"
    res = runner.invoke(cli.app, ["feedback", rid, "0=phishing", "spam", "--api-key", "k-user"])
    assert res.exit_code == 2 and "INDEX=LABEL" in res.output
    res = runner.invoke(cli.app, ["feedback", "clf-" + "a" * 32, "phishing", "--api-key", "k-user"])
    assert res.exit_code == 2 and "request_not_found" in res.output


def test_any_replica_with_the_shared_secret_accepts_feedback_also_after_a_restart(
    adapter_root, tokenizer, smollm2_base
):
    """Two apps (replicas) sharing `feedback_secrets`: B records labels for A's answer; a replica with
    another secret, or with none (per-process key), refuses it with a reason; B remembers duplicates."""

    def replica(**kw):
        return TestClient(
            create_app(settings_for(adapter_root, **kw), backend=FakeBackend(tokenizer, smollm2_base.sha256))
        )

    shared = ["fleet-secret-2", "fleet-secret-1"]
    with replica(feedback_secrets=shared[1:]) as a:
        rid = classify(a, [PHISHY, CLEAN], adapters=["default", "alt"])
    # A is gone (a restart, or another pod): B and C have never seen the request
    with replica(feedback_secrets=shared) as b:  # B signs with a newer key, still verifies A's (rotation)
        body = b.post(
            "/v1/feedback",
            headers=API,
            json={
                "request_id": rid,
                "labels": [
                    {"index": 0, "label": "phishing"},
                    {"index": 1, "label": "legitimate", "adapter": "alt"},
                ],
            },
        ).json()
        assert body.get("recorded") == 3, body
        assert {(d["index"], d["adapter"], d["outcome"]) for d in body["data"]} == {
            (0, "default", "tp"),
            (0, "alt", "tp"),
            (1, "alt", "tn"),
        }
        assert metric(b, "phishlens_feedback_total", adapter="default", outcome="tp") == 1.0
        again = b.post(
            "/v1/feedback",
            headers=API,
            json={"request_id": rid, "labels": [{"index": 0, "label": "legitimate"}]},
        ).json()
        assert again["conflicts"] == 2 and again["recorded"] == 0  # B's ledger: the first label stands
    for kw in ({"feedback_secrets": ["another-fleet"]}, {}):
        with replica(**kw) as c:
            msg = err(
                c.post(
                    "/v1/feedback",
                    headers=API,
                    json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]},
                ),
                404,
                "request_not_found",
            )
            assert "signature does not verify" in msg


def test_kserve_predictions_carry_a_feedback_id(client):
    """A KServe V1 :predict answer names its signed request id too, so KServe users can send feedback."""
    r = client.post("/v1/models/alt:predict", json={"instances": [PHISHY, CLEAN]}, headers=API)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    body = client.post(
        "/v1/feedback",
        headers=API,
        json={
            "request_id": rid,
            "labels": [{"index": 0, "label": "phishing"}, {"index": 1, "label": "legitimate"}],
        },
    ).json()
    assert body["recorded"] == 2 and {d["adapter"] for d in body["data"]} == {"alt"}
    with PhishlensClient("http://testserver", api_key="k-user", http_client=client) as pc:
        pred = pc.predict("alt", [PHISHY])
        assert pred.id and pc.feedback(pred.id, ["phishing"]).recorded == 1


def test_feedback_state_survives_a_restart(adapter_root, tokenizer, smollm2_base, tmp_path):
    """With `feedback_state_dir` the counters, live window and duplicate ledger come back after a restart
    (the real `kill -9` is tests/e2e/test_reliability_faults.py); without it nothing is written."""

    def app(**kw):
        return TestClient(
            create_app(
                settings_for(adapter_root, feedback_secrets=["s1"], **kw),
                backend=FakeBackend(tokenizer, smollm2_base.sha256),
            )
        )

    state = tmp_path / "feedback"
    with app(feedback_state_dir=state) as a:
        rid = classify(a, [PHISHY, CLEAN])
        body = a.post(
            "/v1/feedback",
            headers=API,
            json={
                "request_id": rid,
                "labels": [{"index": 0, "label": "phishing"}, {"index": 1, "label": "phishing"}],
            },
        ).json()
        assert body["recorded"] == 2
        before = {
            k: v
            for k, v in samples(a).items()
            if k[0].startswith(("phishlens_feedback_total", "phishlens_live_"))
        }
    assert before and (state / "feedback.jsonl").is_file()
    with app(feedback_state_dir=state) as b:
        after = {k: v for k, v in samples(b).items() if k in before}
        assert after == before
        again = b.post(
            "/v1/feedback",
            headers=API,
            json={"request_id": rid, "labels": [{"index": 0, "label": "phishing"}]},
        ).json()
        assert again["duplicates"] == 1 and again["recorded"] == 0  # the ledger came back too
    with app(feedback_state_dir=None) as c:
        assert metric(c, "phishlens_feedback_total", adapter="default", outcome="tp") is None
