"""Typed inputs and classify_email in both clients: what goes on the wire and what comes back."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from phishlens.clients import (
    AsyncPhishlensClient,
    EmailInput,
    PhishlensClient,
    PhishlensError,
    SmsInput,
    UrlInput,
)

_ANSWER = {
    "id": "clf-1",
    "usage": {"texts": 1, "prompt_tokens": 9},
    "data": [
        {
            "index": 0,
            "label": "phishing",
            "probs": {"phishing": 0.9, "legitimate": 0.1},
            "score": 0.9,
            "uncertain": False,
            "truncated": False,
            "adapter": {"name": "default", "sha256": "ab" * 32},
            "style": "email",
            "style_source": "given",
            "text": "Subject: x\n\nhi",
            "email": {
                "body_type": "text/plain",
                "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "size": 3}],
                "forwarded": False,
                "parts": 2,
                "defects": [],
            },
        }
    ],
}


def _recorder():
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=_ANSWER)

    return bodies, httpx.MockTransport(handler)


def test_classify_email_sends_ascii_as_text_and_8bit_as_base64():
    bodies, transport = _recorder()
    with PhishlensClient(transport=transport) as c:
        r = c.classify_email(b"Subject: x\r\n\r\nhi\r\n", adapter="default", return_text=True)
        raw8 = "Subject: caf\u00e9\n\n\u00e9t\u00e9".encode("latin-1")
        c.classify_email(raw8)
        c.classify_email("Subject: x\n\n\u65e5\u672c")
    assert bodies[0] == {
        "input": {"email": "Subject: x\r\n\r\nhi\r\n", "encoding": "text"},
        "adapter": "default",
        "return_text": True,
    }
    assert bodies[1]["input"]["encoding"] == "base64"
    assert base64.b64decode(bodies[1]["input"]["email"]) == raw8  # bytes reach the server unchanged
    assert bodies[2]["input"] == {"email": "Subject: x\n\n\u65e5\u672c", "encoding": "text"}
    res = r.data[0]
    assert (res.style, res.style_source, res.text) == ("email", "given", "Subject: x\n\nhi")
    assert res.email is not None and res.email.attachments[0].filename == "a.pdf"


def test_typed_inputs_mixed_with_plain_strings():
    bodies, transport = _recorder()
    with PhishlensClient(transport=transport) as c:
        c.classify(
            [SmsInput(sms="hi", sender="+123"), UrlInput(url="http://x.co"), "plain", {"url": "y.com"}]
        )
        c.classify(EmailInput(email="Subject: a\n\nb"))
    assert bodies[0]["input"] == [
        {"sms": "hi", "sender": "+123"},
        {"url": "http://x.co"},
        "plain",
        {"url": "y.com"},
    ]
    assert bodies[1]["input"] == {"email": "Subject: a\n\nb", "encoding": "text"}
    assert "return_text" not in bodies[0]


def test_async_classify_email():
    bodies, transport = _recorder()

    async def go():
        async with AsyncPhishlensClient(transport=transport) as c:
            return await c.classify_email(b"Subject: x\n\nhi", adapters=["a", "b"])

    r = asyncio.run(go())
    assert bodies[0] == {"input": {"email": "Subject: x\n\nhi", "encoding": "text"}, "adapters": ["a", "b"]}
    assert r.data[0].style == "email"


def test_explain_and_probe_take_typed_inputs():
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(500, json={"error": {"type": "internal_error", "message": "stop here"}})

    with PhishlensClient(transport=httpx.MockTransport(handler), max_retries=0) as c:
        for call in (
            lambda: c.explain(EmailInput(email="Subject: a\n\nb")),
            lambda: c.probe(SmsInput(sms="hi")),
            lambda: c.kserve_explain("default", UrlInput(url="x.example")),
        ):
            with pytest.raises(PhishlensError, match="stop here"):  # the request body is what is checked
                call()
    assert bodies[0]["input"] == {"email": "Subject: a\n\nb", "encoding": "text"}
    assert bodies[1]["input"] == {"sms": "hi"}
    assert bodies[2]["instances"] == [{"url": "x.example"}]
