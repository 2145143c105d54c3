"""`GET /v1/adapters` carries each bundle's manifest metrics and calibration, and the client reads them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from phishlens.clients import PhishlensClient
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import read_manifest, write_manifest
from tests.fakes import write_bundle

METRICS = {
    "test": {"sms": {"f1": 0.97, "precision": 0.95, "recall": 0.99, "roc_auc": 0.995, "fpr": 0.01, "n": 120}},
    "unseen": {"sms_exais": {"f1": 0.68, "roc_auc": None, "n": 120}},
}


def test_listing_has_manifest_metrics_and_calibration(tmp_path, tokenizer, smollm2_base, fake_backend):
    path = write_bundle(
        tmp_path,
        "sms",
        tokenizer=tokenizer,
        base_sha256=smollm2_base.sha256,
        golden=[("please reply urgent with your password", "phishing")],
    )
    m = read_manifest(path)
    cal = m.calibration.model_copy(update={"threshold": 0.764, "uncertain_low": 0.6, "uncertain_high": 0.9})
    write_manifest(path, m.model_copy(update={"metrics": METRICS, "calibration": cal}))
    settings = Settings(adapter_roots=[tmp_path], adapters=["sms"])
    with TestClient(create_app(settings, backend=fake_backend)) as http:
        listed = http.get("/v1/adapters").json()["data"]
        assert listed[0]["metrics"] == METRICS
        assert listed[0]["calibration"] == {
            "threshold": 0.764,
            "uncertain_low": 0.6,
            "uncertain_high": 0.9,
            "temperature": 1.0,
        }
        with PhishlensClient("http://testserver", http_client=http) as client:
            info = client.list_adapters()[0]
    assert info.metrics["test"]["sms"]["f1"] == 0.97
    assert info.calibration is not None and info.calibration.threshold == 0.764
