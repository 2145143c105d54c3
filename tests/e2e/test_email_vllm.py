"""Raw e-mails through the real server (`python -m phishlens.server.main`, vLLM, SmolLM2, adapters/default).

* Parity: a raw RFC 822 message built from a real corpus row is served with exactly the score of the
  text the adapter was trained on for that row (≤ 1e-6), and the server says it saw exactly that text.
* The fixture set (plain, multipart/alternative, HTML-only, base64, quoted-printable, iso-8859-1,
  windows-1252, shift_jis, broken boundary, a phishing mail forwarded inside a benign one, a 20 MB
  attachment) built from real rows: each gets its expected parse or a clear 4xx, none a 5xx, and the
  forwarded phishing mail is caught.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from phishlens.training.contract.pipeline import PIPELINE
from tests.e2e.conftest import require_vllm, smollm2_server
from tests.email_fixtures import capture_raw_rows, fixtures, raw_email

pytestmark = [pytest.mark.vllm, pytest.mark.data, pytest.mark.slow]  # a SmolLM2 vLLM server: minutes
PARITY_ROWS = 4  # per class


@pytest.fixture(scope="module")
def server(smollm2_base, tmp_path_factory) -> str:
    require_vllm()
    tmp = tmp_path_factory.mktemp("phishlens-email-server")
    with smollm2_server(
        tmp, PHISHLENS_ADAPTERS="default", PHISHLENS_FEEDBACK_STATE_DIR=str(tmp / "feedback")
    ) as url:
        yield url


@pytest.fixture(scope="module")
def rows(data_root):
    """(subject, body, training text) of real rows whose subject a header can carry as is."""
    captured = capture_raw_rows(data_root, ["email_spamassassin", "email_nazario_classic"])

    def pick(source, label, n):
        out = []
        for (subject, body, original), text in captured[source]:
            if (
                original == label
                and subject.isascii()
                and "\n" not in subject
                and "=?" not in subject
                and 200 < len(body) < 3000
            ):
                out.append((subject, body, text))
            if len(out) == n:
                return out
        raise AssertionError(f"not enough {label} rows in {source}")

    return {
        "ham": pick("email_spamassassin", "ham", PARITY_ROWS),
        "phishing": pick("email_nazario_classic", "phishing", 3 * PARITY_ROWS),
    }


def classify(url, items, **kw):
    r = httpx.post(f"{url}/v1/classify", json={"input": items, "return_text": True, **kw}, timeout=300)
    assert r.status_code == 200, r.text[:500]
    return r.json()["data"]


def test_served_score_of_a_raw_email_equals_its_training_text(server, rows):
    chosen = rows["ham"] + rows["phishing"][:PARITY_ROWS]
    raws = [{"email": base64.b64encode(raw_email(s, b)).decode(), "encoding": "base64"} for s, b, _ in chosen]
    trained = [t for _, _, t in chosen]
    served_raw = classify(server, raws)
    served_text = classify(server, trained)  # the training text itself, as a plain string
    for raw, flat, text in zip(served_raw, served_text, trained):
        assert (
            raw["text"] == text and flat["text"] == text
        )  # both are exactly what the adapter saw in training
        assert (raw["style"], raw["style_source"], flat["style_source"]) == ("email", "given", "detected")
        assert abs(raw["score"] - flat["score"]) <= 1e-6, (raw["score"], flat["score"])


def test_fixture_emails_from_real_rows_never_5xx_and_the_forward_is_caught(server, rows):
    ham_subject, ham_body, _ = rows["ham"][0]
    # a phishing mail the adapter catches on its own, forwarded inside a benign mail
    candidates = rows["phishing"]
    scores = classify(server, [t for _, _, t in candidates])
    phish_subject, phish_body, _ = next(c for c, s in zip(candidates, scores) if s["label"] == "phishing")
    for fx in fixtures(ham_subject, ham_body, phish_subject, phish_body):
        body = {
            "input": {"email": base64.b64encode(fx.raw).decode(), "encoding": "base64"},
            "return_text": True,
        }
        r = httpx.post(f"{server}/v1/classify", json=body, timeout=300)
        assert r.status_code < 500, (fx.name, r.status_code, r.text[:300])
        if fx.status is not None:
            assert r.status_code == fx.status and r.json()["error"]["type"] == "payload_too_large", fx.name
            continue
        assert r.status_code == 200, (fx.name, r.text[:300])
        (res,) = r.json()["data"]
        if fx.expect is not None:
            want = PIPELINE.email_fields(*fx.expect)
            assert (res["text"].split() if fx.words_only else res["text"]) == (
                want.split() if fx.words_only else want
            ), fx.name
        if fx.forwarded:
            assert res["email"]["forwarded"] and res["label"] == "phishing", (res["score"], res["text"][:300])
