"""Typed inputs on /v1/classify, /v1/explain, /v1/probe-shaped errors and KServe, in-process (create_app +
FakeBackend): the model text each adapter's pipeline makes, style + style_source, return_text, the e-mail
parse, caps (413) and unparseable inputs (422), the fixture e-mails (none gets a 5xx), and the registry
refusing a bundle whose pipeline version it does not know."""

from __future__ import annotations

import base64
import json
import shutil

import pytest
from fastapi.testclient import TestClient

from phishlens.clients import PhishlensClient, SmsInput, UrlInput
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.contract.pipeline import PIPELINE
from phishlens.training.contract.style import detect_style
from tests.email_fixtures import fixtures, raw_email
from tests.fakes import expected_p, write_bundle

API = {"Authorization": "Bearer k-user"}
ADMIN = {"X-API-Key": "k-admin"}
SUBJECT = "Please act urgent: confirm your mailbox"
BODY = "Dear jose,\n\nyour mailbox is full. Confirm at http://mail.example-box.com/confirm today.\n\nAdmin"
BENIGN_SUBJECT, BENIGN_BODY = (
    "Lunch on Friday",
    "Hi Sam,\n\nare we still on for lunch on Friday at noon?\n\nBest,\nKim",
)


def settings_for(root, **kw) -> Settings:
    base = dict(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        email_max_parts=20,
        email_max_depth=4,
        explain_warmup=False,
        explain_engine="backend",
        explain_max_features=40,
        explain_default_max_evals=40,
        drift_enabled=False,
    )
    base.update(kw)
    return Settings(**base)


@pytest.fixture(scope="module")
def client(adapter_root, backend):
    with TestClient(create_app(settings_for(adapter_root), backend=backend)) as c:
        yield c


def err(r, status, type_):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == type_ and body["error"]["message"]
    return body["error"]["message"]


def classify(client, input, **kw):
    r = client.post("/v1/classify", json={"input": input, **kw}, headers=API)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_raw_email_is_parsed_masked_and_laid_out(client):
    raw = raw_email(SUBJECT, BODY).decode("ascii")
    (res,) = classify(client, {"email": raw}, return_text=True)
    assert (res["style"], res["style_source"]) == ("email", "given")
    assert (
        res["text"]
        == "Subject: Please act urgent: confirm your mailbox\n\nDear user,\n\nyour mailbox is full. "
        "Confirm at <URL> today.\n\nAdmin"
    )
    assert res["text"] == PIPELINE.email_fields(SUBJECT, BODY)
    assert res["email"] == {
        "body_type": "text/plain",
        "attachments": [],
        "forwarded": False,
        "parts": 1,
        "defects": [],
    }
    assert res["label"] == "phishing" and abs(res["score"] - expected_p(True)) < 1e-9  # " urgent" in the text
    # the same message flattened to the training layout by hand scores the same, detected as e-mail
    (flat,) = classify(client, res["text"])
    assert (flat["style"], flat["style_source"], flat["score"]) == ("email", "detected", res["score"])
    assert flat["text"] is None  # only on request


def test_base64_email_sms_url_and_plain_strings_in_one_batch(client):
    raw8 = raw_email(BENIGN_SUBJECT, BENIGN_BODY + "\n\nCaf\u00e9 \u00e0 midi", charset="iso-8859-1")
    items = [
        {"email": base64.b64encode(raw8).decode(), "encoding": "base64"},
        {"sms": "reply urgent your parcel is held http://parcel.example/x", "sender": "+447700900000"},
        {"url": "http://paypal.com.example-login.top/verify"},
        "see you at lunch tomorrow",
        "secure-paypal.example.com/login",
    ]
    data = classify(client, items, return_text=True)
    assert [(d["index"], d["style"], d["style_source"]) for d in data] == [
        (0, "email", "given"),
        (1, "sms", "given"),
        (2, "url", "given"),
        (3, "sms", "detected"),
        (4, "url", "detected"),
    ]
    assert data[0]["text"].endswith("Caf\u00e9 \u00e0 midi")  # iso-8859-1 decoded
    assert data[1]["text"] == "reply urgent your parcel is held http://parcel.example/x"  # SMS keep URLs
    assert data[1]["label"] == "phishing" and data[0]["label"] == "legitimate"


def test_each_adapter_gets_its_pipeline_and_results_stay_text_major(client):
    raw = raw_email(SUBJECT, BODY).decode("ascii")
    data = classify(client, [{"email": raw}, "hello"], adapters=["default", "alt"], return_text=True)
    assert [(d["index"], d["adapter"]["name"]) for d in data] == [
        (0, "default"),
        (0, "alt"),
        (1, "default"),
        (1, "alt"),
    ]
    assert data[0]["text"] == data[1]["text"] and data[0]["email"] == data[1]["email"]


def test_fixture_emails_never_5xx(client):
    """Every fixture form is classified with its expected parse, or refused with a clear 4xx."""
    for fx in fixtures(BENIGN_SUBJECT, BENIGN_BODY, SUBJECT, BODY):
        payload = {
            "input": {"email": base64.b64encode(fx.raw).decode(), "encoding": "base64"},
            "return_text": True,
        }
        r = client.post("/v1/classify", json=payload, headers=API)
        assert r.status_code < 500, (fx.name, r.status_code, r.text[:300])
        if fx.status is not None:
            msg = err(r, fx.status, "payload_too_large")
            assert "bytes" in msg, msg
            continue
        assert r.status_code == 200, (fx.name, r.text[:300])
        (res,) = r.json()["data"]
        assert res["email"]["forwarded"] == fx.forwarded, fx.name
        if fx.expect is not None:
            want = PIPELINE.email_fields(*fx.expect)
            assert (res["text"].split() if fx.words_only else res["text"]) == (
                want.split() if fx.words_only else want
            ), fx.name
        if fx.forwarded:  # the forwarded phishing mail is what the model reads
            assert (
                "Subject: Please act urgent: confirm your mailbox" in res["text"]
                and res["label"] == "phishing"
            )


def test_caps_and_unparseable_inputs_are_clear_4xx(client):
    many = (
        'Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        + "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(30))
        + "--b--\n"
    )
    msg = err(
        client.post("/v1/classify", json={"input": ["ok", {"email": many}]}, headers=API),
        413,
        "payload_too_large",
    )
    assert msg.startswith("input[1]:") and "MIME parts" in msg
    msg = err(
        client.post("/v1/classify", json={"input": {"email": "!!!", "encoding": "base64"}}, headers=API),
        422,
        "validation_error",
    )
    assert "base64" in msg
    msg = err(
        client.post("/v1/classify", json={"input": {"email": "Subject:\n\n"}}, headers=API),
        422,
        "validation_error",
    )
    assert "no subject and no text body" in msg
    err(client.post("/v1/classify", json={"input": {"sms": "  "}}, headers=API), 422, "validation_error")
    err(client.post("/v1/classify", json={"input": {"fax": "x"}}, headers=API), 422, "validation_error")
    err(
        client.post("/v1/classify", json={"input": {"url": "x", "sms": "y"}}, headers=API),
        422,
        "validation_error",
    )


def test_kserve_predict_and_explain_take_typed_inputs(client):
    raw = raw_email(SUBJECT, BODY).decode("ascii")
    r = client.post(
        "/v1/models/default:predict",
        json={
            "instances": [{"email": raw}, {"text": "hello"}, {"url": "x.example.com"}],
            "return_text": True,
        },
        headers=API,
    )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["style"] for p in preds] == ["email", "sms", "url"]
    assert preds[0]["text"] == PIPELINE.email_fields(SUBJECT, BODY)
    r = client.post(
        "/v1/explain", json={"input": {"email": raw}, "max_evals": 40, "return_text": True}, headers=API
    )
    assert r.status_code == 200, r.text
    ex = r.json()
    assert (ex["style"], ex["style_source"]) == ("email", "given")
    assert ex["text"] == PIPELINE.email_fields(SUBJECT, BODY)
    # the attributions are over the words of that text: the parse, the mask and the layout included
    assert "".join(ex["tokens"]) == ex["masked_text"] and ex["masked_text"].split() == ex["text"].split()
    assert "<URL>" in ex["masked_text"] and "http" not in ex["masked_text"]
    r = client.post(
        "/v1/models/default:explain",
        json={"instances": [{"sms": "urgent: pay now"}], "max_evals": 40},
        headers=API,
    )
    assert r.status_code == 200 and r.json()["explanations"][0]["style"] == "sms"


def test_a_template_that_names_the_style_gets_the_declared_or_detected_one(
    tmp_path, tokenizer, smollm2_base, fake_backend
):
    """{style} in a bundle's template: a typed input's declared style, a plain string's detected one, and
    every masked variant of an explanation scored as its input's style."""
    write_bundle(
        tmp_path,
        "default",
        tokenizer=tokenizer,
        base_sha256=smollm2_base.sha256,
        template="Is the {style} below phishing or legit?\n{text}\nAnswer:",
    )
    one_line = "reply urgent, your parcel is held at the depot until you confirm the fee"
    long_sms = f"{one_line} https://parcel.example/{'a' * 260}"
    assert detect_style(long_sms) == "email"  # 300+ characters: a plain string this long reads as e-mail
    settings = settings_for(tmp_path, adapters=["default"])
    with TestClient(create_app(settings, backend=fake_backend)) as c:
        fake_backend.calls.clear()
        mail = raw_email("Parcel", one_line).decode()
        data = classify(c, [one_line, {"email": mail}, {"url": "a.example.com"}, {"sms": long_sms}, long_sms])
        assert [(d["style"], d["style_source"]) for d in data] == [
            ("sms", "detected"),
            ("email", "given"),
            ("url", "given"),
            ("sms", "given"),
            ("email", "detected"),
        ]
        prompts = [tokenizer.decode(r.prompt_ids) for call in fake_backend.calls for r in call]
        assert [p.split("\n")[0] for p in prompts] == [
            f"Is the {word} below phishing or legit?" for word in ("SMS", "e-mail", "URL", "SMS", "e-mail")
        ]
        # an explanation scores every masked variant as its input's style (here declared, not detected)
        fake_backend.calls.clear()
        body = {"input": {"sms": long_sms}, "max_evals": 40, "return_text": True}
        r = c.post("/v1/explain", json=body, headers=API)
        assert r.status_code == 200 and r.json()["style"] == "sms", r.text
        assert r.json()["text"] == long_sms
        prompts = {tokenizer.decode(r.prompt_ids).split("\n")[0] for call in fake_backend.calls for r in call}
        assert prompts == {"Is the SMS below phishing or legit?"}


def test_client_typed_inputs_against_the_app(client):
    pc = PhishlensClient(http_client=client, api_key="k-user")
    out = pc.classify_email(raw_email(SUBJECT, BODY), return_text=True)
    assert out.data[0].style == "email" and out.data[0].text == PIPELINE.email_fields(SUBJECT, BODY)
    both = pc.classify([SmsInput(sms="urgent", sender="x"), UrlInput(url="a.example.com")])
    assert [d.style for d in both.data] == ["sms", "url"] and [d.style_source for d in both.data] == [
        "given"
    ] * 2


def test_registry_refuses_unknown_pipeline_version(client, adapter_root, tmp_path):
    bad = adapter_root / "future-pipeline"
    shutil.copytree(adapter_root / "spare", bad)
    try:
        m = json.loads((bad / "phishlens.json").read_text())
        m["name"] = "future-pipeline"
        m["pipeline"] = {"name": "phishlens-text", "version": 99}
        (bad / "phishlens.json").write_text(json.dumps(m))
        r = client.post("/v1/adapters", json={"path": "future-pipeline"}, headers=ADMIN)
        msg = err(r, 400, "bad_request")
        assert "input pipeline phishlens-text v99 is not known" in msg and "retrain" in msg
        assert "future-pipeline" not in [
            a["name"] for a in client.get("/v1/adapters", headers=API).json()["data"]
        ]
    finally:
        shutil.rmtree(bad)
