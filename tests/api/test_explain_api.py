"""POST /v1/explain and KServe `:explain` in-process (create_app + FakeBackend): success, batching,
metrics isolation, the error contract, the concurrency limit, and the sync/async clients and CLI."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from phishlens.clients import AsyncPhishlensClient, OverloadedError, PhishlensClient, ValidationError
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests.fakes import expected_p

API = {"Authorization": "Bearer k-user"}
PHISHY = "Hello there, please reply   urgent with your\n password and the code we sent to your phone today"


def settings_for(root, **kw) -> Settings:
    base = dict(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        max_chars=300,
        explain_max_evals=400,
        explain_default_max_evals=120,
        explain_concurrency=1,
        explain_max_features=40,
        explain_warmup=False,
        explain_engine="backend",
        explain_round_nodes=16,
    )
    base.update(kw)
    return Settings(**base)


@pytest.fixture(scope="module")
def client(adapter_root, backend):
    with TestClient(create_app(settings_for(adapter_root), backend=backend)) as c:
        yield c


@pytest.fixture(autouse=True)
def _reset(backend):
    yield
    backend.fail, backend.gate = None, None


def err(r, status, type_):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == type_ and body["error"]["message"]
    return body["error"]["message"]


def test_explain_word_level(client, backend):
    backend.calls.clear()
    r = client.post("/v1/explain", json={"input": PHISHY}, headers=API)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "explanation" and body["id"].startswith("exp-")
    assert body["adapter"]["name"] == "default" and body["label"] == "phishing" and body["html"] is None
    assert body["masked_text"] == " ".join(PHISHY.split()) == "".join(body["tokens"])
    assert body["output_space"] == "probability" and body["granularity"] == "word"
    assert math.isclose(body["prediction"], expected_p(True), abs_tol=1e-9)
    assert math.isclose(body["base_value"], expected_p(False), abs_tol=1e-9)
    assert abs(body["base_value"] + sum(body["attributions"]) - body["prediction"]) <= 1e-4
    assert body["additivity_error"] <= 1e-4
    best = max(range(len(body["tokens"])), key=lambda i: body["attributions"][i])
    assert body["tokens"][best].strip() == "urgent"
    # budget: the default (120) applies; every prompt the backend saw is distinct; rounds are batched
    prompts = [tuple(r.prompt_ids) for call in backend.calls for r in call]
    assert body["evaluations"] == len(prompts) == len(set(prompts)) <= body["max_evals"] == 120
    assert max(len(c) for c in backend.calls) > 10  # a 16-node round is one call, beyond shap's 5 nodes
    assert all(r.adapter is not None and r.adapter.name == "default" for c in backend.calls for r in c)


def test_explain_token_level_other_adapter_and_html(client):
    r = client.post(
        "/v1/explain",
        json={
            "input": "please reply urgent now",
            "adapter": "alt",
            "granularity": "token",
            "max_evals": 50,
            "html": True,
        },
        headers=API,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["adapter"]["name"] == "alt" and body["granularity"] == "token" and body["max_evals"] == 50
    assert math.isclose(body["prediction"], expected_p(True, 2.0), abs_tol=1e-9)  # alt's temperature applies
    assert body["html"].startswith("<!DOCTYPE html>") and "urgent" in body["html"]


def test_kserve_explain(client):
    r = client.post(
        "/v1/models/default:explain", json={"instances": [{"text": PHISHY}], "max_evals": 40}, headers=API
    )
    assert r.status_code == 200, r.text
    (ex,) = r.json()["explanations"]
    assert ex["adapter"]["name"] == "default" and ex["evaluations"] <= 40
    err(
        client.post("/v1/models/nope:explain", json={"instances": ["hi"]}, headers=API),
        404,
        "adapter_not_found",
    )
    err(
        client.post("/v1/models/default:explain", json={"instances": ["a", "b"]}, headers=API),
        422,
        "validation_error",
    )
    err(
        client.post("/v1/models/default:explain", json={"instances": ["  "]}, headers=API),
        422,
        "validation_error",
    )


def test_explain_stays_out_of_business_metrics_and_observers(client):
    rt = client.app.state.runtime
    seen = []

    class Spy:
        def observe(self, texts, outcome):
            seen.append(outcome)

    rt.classify.observers.append(Spy())
    try:
        before = client.get("/metrics").text
        r = client.post("/v1/explain", json={"input": PHISHY, "max_evals": 20}, headers=API)
        assert r.status_code == 200, r.text
        after = client.get("/metrics").text
    finally:
        rt.classify.observers.pop()
    assert seen == []

    def classifications(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if ln.startswith("phishlens_classifications_total")]

    assert classifications(after) == classifications(before)

    def count(text: str) -> float:
        line = next(
            ln
            for ln in text.splitlines()
            if ln.startswith('phishlens_explain_latency_seconds_count{granularity="word"}')
        )
        return float(line.split()[-1])

    assert count(after) == count(before) + 1
    assert "phishlens_explain_evaluations_count" in after


@pytest.mark.parametrize(
    "payload,status,type_",
    [
        ({"input": ""}, 422, "validation_error"),
        ({"input": " \n\t"}, 422, "validation_error"),
        ({"input": "x" * 301}, 413, "payload_too_large"),  # over max_chars
        ({"input": " ".join(["word"] * 41)}, 413, "payload_too_large"),  # over explain_max_features
        ({"input": "hi", "adapter": "nope"}, 404, "adapter_not_found"),
        ({"input": "hi", "max_evals": 401}, 422, "validation_error"),  # over the cap
        ({"input": "hi", "max_evals": 3}, 422, "validation_error"),
        ({"input": "hi", "granularity": "sentence"}, 422, "validation_error"),
        ({"input": ["a", "b"]}, 422, "validation_error"),
        ({"input": "hi", "extra": 1}, 422, "validation_error"),
    ],
)
def test_error_contract(client, payload, status, type_):
    msg = err(client.post("/v1/explain", json=payload, headers=API), status, type_)
    if payload.get("max_evals") == 401:
        assert "400" in msg


def test_malformed_auth_and_backend_failure(client, backend):
    err(
        client.post("/v1/explain", content=b"{nope", headers={**API, "content-type": "application/json"}),
        400,
        "bad_request",
    )
    err(client.post("/v1/explain", json={"input": "hi"}), 401, "unauthorized")
    backend.fail = "engine exploded"
    err(client.post("/v1/explain", json={"input": PHISHY}, headers=API), 424, "backend_failure")


def test_concurrency_limit_429(client, backend):
    backend.gate = threading.Event()
    first: dict = {}

    def slow() -> None:
        first["r"] = client.post("/v1/explain", json={"input": PHISHY, "max_evals": 20}, headers=API)

    t = threading.Thread(target=slow)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while client.app.state.runtime.explain.running < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = client.post("/v1/explain", json={"input": PHISHY}, headers=API)
        err(r, 429, "overloaded")
        assert r.headers["retry-after"] == "1"
        # classification has its own admission: it is not blocked by a running explanation's slot
        assert client.post("/v1/classify", json={"input": "lunch?"}, headers=API).status_code == 200
    finally:
        backend.gate.set()
        t.join(30)
    assert first["r"].status_code == 200
    assert client.app.state.runtime.explain.running == 0


def test_sync_async_clients_and_cli(client, backend, tmp_path):
    with PhishlensClient("http://testserver", api_key="k-user", http_client=client, max_retries=0) as c:
        res = c.explain(PHISHY, max_evals=30, html=True)
        assert res.top(1)[0][0] == "urgent" and res.html and res.evaluations <= 30
        assert abs(res.base_value + sum(res.attributions) - res.prediction) <= 1e-4
        ks = c.kserve_explain("alt", "please, urgent", max_evals=10)
        assert ks.explanations[0].adapter.name == "alt"
        with pytest.raises(ValidationError):
            c.explain("hi", max_evals=10_000)
        backend.gate = threading.Event()  # hold one explanation so the next gets 429 (no retries)
        t = threading.Thread(target=lambda: c.explain(PHISHY, max_evals=10))
        t.start()
        try:
            while client.app.state.runtime.explain.running < 1:
                time.sleep(0.01)
            with pytest.raises(OverloadedError):
                c.explain(PHISHY)
        finally:
            backend.gate.set()
            t.join(30)
            backend.gate = None

    async def run_async() -> None:
        app = client.app
        async with AsyncPhishlensClient(
            "http://testserver", api_key="k-user", transport=httpx.ASGITransport(app=app)
        ) as ac:
            r = await ac.explain("call now, urgent", granularity="token", max_evals=20)
            assert r.granularity == "token" and r.label == "phishing"

    asyncio.run(run_async())

    from phishlens.clients import cli

    factory = cli.client_factory
    cli.client_factory = lambda url, api_key=None: PhishlensClient(url, api_key=api_key, http_client=client)
    try:
        page = tmp_path / "e.html"
        out = CliRunner().invoke(
            cli.app,
            [
                "explain",
                PHISHY,
                "--max-evals",
                "30",
                "--html",
                str(page),
                "--color",
                "always",
                "--api-key",
                "k-user",
            ],
        )
        assert out.exit_code == 0, out.output
        assert "\x1b[48;2;" in out.output and "towards phishing:   'urgent'" in out.output
        assert page.read_text().startswith("<!DOCTYPE html>")
        bad = CliRunner().invoke(cli.app, ["explain", "hi", "--adapter", "nope", "--api-key", "k-user"])
        assert bad.exit_code == 2 and "adapter_not_found" in bad.output
    finally:
        cli.client_factory = factory
