"""Typed inputs on POST /v1/probe (real app, HF backend, tiny trained bundles): a raw e-mail is probed on the
text its pipeline makes, and the logit lens ends at the score /v1/classify serves for the same e-mail."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.contract.pipeline import PIPELINE
from tests.email_fixtures import raw_email
from tests.models import single_thread


@pytest.fixture(scope="module")
def client(tiny_bundles, tiny_llama, tmp_path_factory):
    root, _, _ = tiny_bundles
    settings = Settings(
        backend="hf",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=["zebra-phish"],
        default_adapter="zebra-phish",
        explain_warmup=False,
        drift_state_dir=tmp_path_factory.mktemp("drift"),
    )
    with single_thread(), TestClient(create_app(settings)) as c:
        yield c


def test_probe_a_raw_email_and_an_sms(client):
    raw = raw_email("please call the office", "please call the office zebra tomorrow http://x.example/a")
    item = {"email": raw.decode("ascii")}
    r = client.post("/v1/probe", json={"input": item, "return_text": True})
    assert r.status_code == 200, r.text
    body = r.json()
    want = PIPELINE.email_fields(
        "please call the office", "please call the office zebra tomorrow http://x.example/a"
    )
    assert (body["style"], body["style_source"], body["text"]) == ("email", "given", want)
    assert body["email"]["body_type"] == "text/plain"
    served = client.post("/v1/classify", json={"input": item}).json()["data"][0]
    assert abs(body["logit_lens"][-1] - served["score"]) < 1e-4 and body["label"] == served["label"]
    r = client.post("/v1/probe", json={"input": {"sms": "call the office zebra"}})
    assert r.status_code == 200 and (r.json()["style"], r.json()["text"]) == ("sms", None)
    r = client.post("/v1/probe", json={"input": {"email": "Subject:\n\n"}})
    assert r.status_code == 422 and "no subject and no text body" in r.json()["error"]["message"]
