"""Per-result OOD flag and `adapter: "auto"` routing through the in-process app, on the shipped bundles.

The scores come from the fake engine (routing and the OOD flag do not depend on them; tests/e2e/
test_routing_ood_vllm.py repeats the essentials on vLLM + SmolLM2); everything else is real: the shipped
bundles `default`, `specialist-sms`, `specialist-url` with their format-2 drift references, real MiniLM
embeddings, real corpus rows, the real style detection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from phishlens.explain.ood import OodModel, reference_scores
from phishlens.explain.reference import ReferenceProfile
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.commands.evaluate import ood_model
from phishlens.training.contract.bundle import load_bundle
from tests.fakes import FakeBackend, write_bundle

pytestmark = pytest.mark.data
REPO = Path(__file__).resolve().parents[2]
ROUTES = {"sms": "specialist-sms", "url": "specialist-url"}


@pytest.fixture(scope="module")
def root(tmp_path_factory, tokenizer, smollm2_base) -> Path:
    """A root with `plain`, a bundle without a drift reference (the shipped ones come from adapters/)."""
    root = tmp_path_factory.mktemp("ood-routing")
    write_bundle(root, "plain", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)
    return root


def make_client(root, tokenizer, smollm2_base, tmp_path, **kw) -> TestClient:
    settings = Settings(
        adapter_roots=[root, REPO / "adapters"],
        adapters=kw.pop("adapters", ["default", "specialist-sms", "specialist-url", "plain"]),
        drift_enabled=kw.pop("drift_enabled", False),
        drift_state_dir=tmp_path / "drift",
        explain_warmup=False,
        **kw,
    )
    return TestClient(create_app(settings, backend=FakeBackend(tokenizer, smollm2_base.sha256)))


@pytest.fixture(scope="module")
def client(root, tokenizer, smollm2_base, tmp_path_factory):
    with make_client(root, tokenizer, smollm2_base, tmp_path_factory.mktemp("state"), routes=ROUTES) as c:
        yield c


def rows_of(splits, source: str, n: int, seed: int = 5) -> list[str]:
    return [r.text for r in splits.sample("test", source, per_label=n // 2, seed=seed)][:n]


def classify(client, texts, **body) -> list[dict]:
    out = []
    for i in range(0, len(texts), 32):
        r = client.post("/v1/classify", json={"input": texts[i : i + 32], **body})
        assert r.status_code == 200, r.text
        out += r.json()["data"]
    return out


# -- OOD flag -------------------------------------------------------------------------------------------
def test_threshold_flags_five_percent_of_the_reference_and_matches_the_offline_benchmark(client):
    for name in ("default", "specialist-url"):
        b = load_bundle(REPO / "adapters" / name)
        ref = ReferenceProfile.load(b.path / "reference.json").embedding
        model = OodModel.of(ref)
        share = float((reference_scores(ref) > model.threshold).mean())
        assert abs(share - 0.05) <= 1.0 / len(ref.vectors) + 1e-9, share
        served = classify(client, ["lunch at noon?"], adapter=name)[0]["ood"]
        assert served["threshold"] == pytest.approx(model.threshold, abs=1e-12)
        assert ood_model(b).threshold == pytest.approx(served["threshold"], abs=1e-12)  # evaluate's flag


def test_in_distribution_text_is_mostly_unflagged_and_other_styles_are_flagged(client, splits):
    seen = [
        t for s in ("sms_uci", "email_spamassassin", "url_phishtank_iscx") for t in rows_of(splits, s, 40)
    ]
    res = classify(client, seen, adapter="default")
    assert all(r["ood"] is not None and r["adapter"]["name"] == "default" for r in res)
    flagged = np.mean([r["ood"]["flagged"] for r in res])
    assert flagged <= 0.15, flagged  # 5 % expected on the reference's own distribution
    scores = [r["ood"]["score"] for r in res]
    assert all(r["ood"]["flagged"] == (r["ood"]["score"] > r["ood"]["threshold"]) for r in res)

    # the URL specialist saw only URLs: SMS and e-mails are another style for it. 200 seen-source URLs, not
    # 40: its reference spreads the legitimate side over three sources (50 ISCX rows), so ISCX's legitimate
    # URLs are flagged more often than its phishing ones (about 15 % vs 1 %): 40 rows cannot bound the mean
    urls = classify(client, rows_of(splits, "url_phishtank_iscx", 200), adapter="specialist-url")
    other = classify(
        client,
        rows_of(splits, "sms_uci", 30) + rows_of(splits, "email_spamassassin", 30),
        adapter="specialist-url",
    )
    assert np.mean([r["ood"]["flagged"] for r in urls]) <= 0.15
    assert np.mean([r["ood"]["flagged"] for r in other]) >= 0.6
    assert np.median([r["ood"]["score"] for r in other]) > np.median(scores)


def test_no_reference_no_ood_and_the_setting_turns_it_off(client, root, tokenizer, smollm2_base, tmp_path):
    res = classify(client, ["lunch at noon?"], adapters=["plain", "default"])
    assert res[0]["adapter"]["name"] == "plain" and res[0]["ood"] is None
    assert res[1]["ood"]["score"] > 0
    kserve = client.post("/v1/models/default:predict", json={"instances": ["lunch at noon?"]})
    assert kserve.json()["predictions"][0]["ood"] == res[1]["ood"]
    with make_client(root, tokenizer, smollm2_base, tmp_path, adapters=["default"], ood_enabled=False) as c:
        r = c.post("/v1/classify", json={"input": "lunch at noon?"})
        assert r.status_code == 200 and r.json()["data"][0]["ood"] is None


def test_drift_monitor_reuses_the_request_embeddings(root, tokenizer, smollm2_base, tmp_path, splits):
    with make_client(
        root,
        tokenizer,
        smollm2_base,
        tmp_path,
        adapters=["default"],
        drift_enabled=True,
        drift_window=10,
        drift_eval_every=5,
    ) as c:
        classify(c, rows_of(splits, "sms_uci", 12))
        drift = c.app.state.runtime.drift
        assert drift.flush(300)
        assert drift._embedders == {}  # it never loaded its own MiniLM: the OOD pass's vectors were used
        d = {x["adapter"]: x for x in c.get("/v1/drift").json()["data"]}["default"]
        assert d["window_texts"] == 10 and d["status"] in ("ok", "drift")


# -- routing --------------------------------------------------------------------------------------------
def test_auto_routes_each_text_to_its_styles_adapter_in_input_order(client):
    shas = {a["name"]: a["sha256"] for a in client.get("/v1/adapters").json()["data"]}
    texts = [
        "Subject: quarterly review\n\nHi all, the review moved to Monday. Regards, Ana",
        "URGENT: your parcel is held, pay 1.99 at http://x.example",
        "https://github.com/pytorch/pytorch/issues",
        "lunch at 1?",
        {"url": "paypal.com.secure-login.example/verify"},
        {"sms": "Subject: this is an SMS, whatever it looks like"},
    ]
    res = classify(client, texts, adapter="auto")
    assert [r["index"] for r in res] == list(range(len(texts)))
    assert [r["style"] for r in res] == ["email", "sms", "url", "sms", "url", "sms"]
    assert [r["adapter"]["name"] for r in res] == [
        "default",
        "specialist-sms",
        "specialist-url",
        "specialist-sms",
        "specialist-url",
        "specialist-sms",
    ]
    assert all(r["adapter"]["sha256"] == shas[r["adapter"]["name"]] for r in res)
    # each routed verdict is the one that adapter gives when named directly
    for r, t in zip(res, texts):
        direct = classify(client, [t], adapter=r["adapter"]["name"])[0]
        assert (direct["score"], direct["label"], direct["ood"]["flagged"]) == (
            r["score"],
            r["label"],
            r["ood"]["flagged"],
        )
        assert direct["ood"]["score"] == pytest.approx(r["ood"]["score"], abs=1e-4)  # batch padding in MiniLM
    # KServe: the router is a model too
    k = client.post("/v1/models/auto:predict", json={"instances": texts[:3]})
    assert [p["adapter"]["name"] for p in k.json()["predictions"]] == [
        "default",
        "specialist-sms",
        "specialist-url",
    ]


def test_auto_without_routes_is_the_default_adapter(root, tokenizer, smollm2_base, tmp_path):
    with make_client(root, tokenizer, smollm2_base, tmp_path, adapters=["default", "specialist-sms"]) as c:
        r = c.post("/v1/classify", json={"input": ["lunch at 1?", "x.example/login"], "adapter": "auto"})
        assert r.status_code == 200 and {x["adapter"]["name"] for x in r.json()["data"]} == {"default"}


def test_a_route_to_a_missing_adapter_is_a_clear_404_only_for_its_style(
    root, tokenizer, smollm2_base, tmp_path
):
    routes = {"sms": "specialist-sms", "url": "not-loaded"}
    with make_client(
        root, tokenizer, smollm2_base, tmp_path, adapters=["default", "specialist-sms"], routes=routes
    ) as c:
        ok = c.post(
            "/v1/classify", json={"input": ["lunch at 1?", "Subject: hi\n\nsee you"], "adapter": "auto"}
        )
        assert ok.status_code == 200
        assert [x["adapter"]["name"] for x in ok.json()["data"]] == ["specialist-sms", "default"]
        r = c.post("/v1/classify", json={"input": ["lunch at 1?", "x.example/login"], "adapter": "auto"})
        assert r.status_code == 404
        err = r.json()["error"]
        assert err["type"] == "adapter_not_found"
        assert "url -> not-loaded" in err["message"] and "PHISHLENS_ROUTES" in err["message"]


def test_auto_cannot_be_mixed_with_other_adapters(client):
    r = client.post("/v1/classify", json={"input": "lunch?", "adapters": ["auto", "default"]})
    assert r.status_code == 422 and "auto" in r.json()["error"]["message"]


def test_routes_setting_is_validated():
    assert Settings(routes="sms=a, url=b").routes == {"sms": "a", "url": "b"}
    assert Settings(routes='{"email": "c"}').routes == {"email": "c"}
    with pytest.raises(ValueError, match="unknown style"):
        Settings(routes="fax=a")
    with pytest.raises(ValueError, match="style=adapter"):
        Settings(routes="sms")


def test_probe_and_explain_take_auto_too(client, root, tokenizer, smollm2_base, tmp_path):
    r = client.post("/v1/probe", json={"input": "lunch at 1?", "adapter": "auto"})
    assert r.status_code == 200, r.text
    direct = client.post("/v1/probe", json={"input": "lunch at 1?", "adapter": "specialist-sms"}).json()
    assert r.json()["adapter"] == direct["adapter"] and r.json()["adapter"]["name"] == "specialist-sms"
    assert r.json()["logit_lens"] == pytest.approx(direct["logit_lens"], abs=1e-6)
    with make_client(
        root, tokenizer, smollm2_base, tmp_path, adapters=["default"], routes={"url": "not-loaded"}
    ) as c:
        e = c.post("/v1/explain", json={"input": {"url": "x.example/login"}, "adapter": "auto"})
        assert e.status_code == 404 and "url -> not-loaded" in e.json()["error"]["message"]


def test_auto_is_a_reserved_adapter_name(root, tokenizer, smollm2_base, tmp_path):
    with make_client(
        root, tokenizer, smollm2_base, tmp_path, adapters=["default"], admin_keys=["k-admin"]
    ) as c:
        r = c.post("/v1/adapters", json={"path": "plain", "name": "auto"}, headers={"X-API-Key": "k-admin"})
        assert r.status_code == 400 and "reserved" in r.json()["error"]["message"]
