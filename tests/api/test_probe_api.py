"""POST /v1/probe on the real app with the real HF backend and tiny trained bundles.

The probe service's own HF copy must read the served probability at the last layer of its logit
lens (compared with /v1/classify through the HF backend), carry the bundle's probes, refuse bad
input with clean 4xx, cap its concurrency with 429, and stay out of the business metrics.
"""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests.models import single_thread

PHISHY, CLEAN = "please call the office zebra tomorrow", "please call the office tomorrow"


@pytest.fixture(scope="module")
def client(tiny_bundles, tiny_llama, tmp_path_factory):
    root, _, _ = tiny_bundles
    settings = Settings(
        backend="hf",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=["zebra-phish", "zebra-legit"],
        default_adapter="zebra-phish",
        probe_max_concurrency=1,
        drift_state_dir=tmp_path_factory.mktemp("drift"),
    )
    with single_thread(), TestClient(create_app(settings)) as c:
        yield c


def _score(client, text, adapter):
    r = client.post("/v1/classify", json={"input": text, "adapter": adapter})
    assert r.status_code == 200, r.text
    return r.json()["data"][0]


@pytest.mark.parametrize("adapter", ["zebra-phish", "zebra-legit"])
def test_logit_lens_ends_at_served_score(client, adapter):
    for text in (PHISHY, CLEAN):
        served = _score(client, text, adapter)
        r = client.post("/v1/probe", json={"input": text, "adapter": adapter})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["layers"] == [f"layer.{i}.resid_post" for i in range(4)]
        assert len(body["logit_lens"]) == 4
        assert abs(body["logit_lens"][-1] - served["score"]) < 1e-4
        assert abs(body["score"] - served["score"]) < 1e-4 and body["label"] == served["label"]
        assert body["adapter"] == served["adapter"]
        assert len(body["probes"]["label"]) == 4 and len(body["probe_accuracy"]["label"]) == 4
        assert all(0.0 <= v <= 1.0 for v in body["probes"]["label"])


def test_label_probe_reads_the_planted_rule(client):
    phish = client.post("/v1/probe", json={"input": PHISHY}).json()
    clean = client.post("/v1/probe", json={"input": CLEAN}).json()
    assert phish["adapter"]["name"] == "zebra-phish"  # the default adapter
    assert phish["probes"]["label"][-1] > 0.5 > clean["probes"]["label"][-1]


def test_bad_input_is_a_clean_4xx(client):
    assert client.post("/v1/probe", json={"input": "  "}).status_code == 422
    assert client.post("/v1/probe", json={"input": ["a", "b"]}).status_code == 422
    assert client.post("/v1/probe", json={"input": "x", "evil": 1}).status_code == 422
    r = client.post("/v1/probe", json={"input": "x", "adapter": "nope"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "adapter_not_found"
    assert (
        client.post(
            "/v1/probe", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )


def test_concurrency_cap_answers_429(client):
    engine = client.app.state.runtime.probe.engine
    first: dict = {}
    engine.lock.acquire()  # hold the model: the first request is admitted and waits for it
    try:
        t = threading.Thread(target=lambda: first.update(r=client.post("/v1/probe", json={"input": CLEAN})))
        t.start()
        deadline = time.monotonic() + 10
        while client.app.state.runtime.probe.inflight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = client.post("/v1/probe", json={"input": PHISHY})
        assert r.status_code == 429 and r.json()["error"]["type"] == "overloaded"
    finally:
        engine.lock.release()
    t.join(30)
    assert first["r"].status_code == 200


def test_probe_traffic_stays_out_of_business_metrics(client):
    def served_count() -> float:
        text = client.get("/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("phishlens_classifications_total{")
        )

    before = served_count()
    assert client.post("/v1/probe", json={"input": PHISHY}).status_code == 200
    assert served_count() == before


def test_clients_and_cli(client, monkeypatch):
    """Sync client through the real app; async client and CLI on the real app's answer."""
    import asyncio
    import functools
    import json

    import httpx
    from typer.testing import CliRunner

    from phishlens.clients import cli
    from phishlens.clients.client import AsyncPhishlensClient, PhishlensClient
    from phishlens.clients.protocol.errors import PhishlensError

    sync = PhishlensClient("http://testserver", http_client=client)
    res = sync.probe(PHISHY, adapter="zebra-legit")
    assert res.adapter.name == "zebra-legit" and len(res.logit_lens) == 4 and res.label == "legitimate"
    with pytest.raises(PhishlensError) as e:
        sync.probe(PHISHY, adapter="nope")
    assert e.value.status == 404
    body = client.post("/v1/probe", json={"input": PHISHY}).json()

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/probe" and json.loads(request.content)["input"] == PHISHY
        return httpx.Response(200, json=body)

    async def go():
        async with AsyncPhishlensClient("http://x", transport=httpx.MockTransport(answer)) as ac:
            return await ac.probe(PHISHY)

    assert asyncio.run(go()).logit_lens == body["logit_lens"]
    monkeypatch.setattr(
        cli, "client_factory", functools.partial(PhishlensClient, transport=httpx.MockTransport(answer))
    )
    out = CliRunner().invoke(cli.app, ["probe", PHISHY])
    assert out.exit_code == 0, out.output
    assert "layer.3.resid_post" in out.output and "label:" in out.output
    assert out.output.splitlines()[0].split() == ["layer", "lens", *body["probes"]]  # headers never cut
    out = CliRunner().invoke(cli.app, ["probe", PHISHY, "--json"])
    assert json.loads(out.output)["layers"] == body["layers"]


def test_hf_replica_is_shared_and_closed_on_shutdown(tiny_bundles, tiny_llama, tmp_path):
    """The one transformers copy (probe + prefix-tree explain) is freed when the app stops."""
    root, _, _ = tiny_bundles
    settings = Settings(
        backend="hf",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=["zebra-phish"],
        default_adapter="zebra-phish",
        drift_state_dir=tmp_path,
        explain_warmup=False,
    )
    with single_thread(), TestClient(create_app(settings)) as c:
        assert c.post("/v1/probe", json={"input": PHISHY}).status_code == 200
        rt = c.app.state.runtime
        replica = rt.probe.replica
        assert replica is rt.explain.replica and replica.model is not None and not replica.closed
    assert replica.closed and replica.model is None and replica.tokenizer is None
