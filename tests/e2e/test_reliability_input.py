"""Hostile input against a real uvicorn server (HF backend, tiny Llama, trained tiny bundles): never a 5xx.

Regression tests for the two bugs of issue 14 (a lone surrogate answered 500 with the traceback logged
twice; a 12 MB body sent with urllib met "connection reset" instead of the 413), then a hand-written
corpus of hostile bodies sent to every POST route: each answer must be < 500, carry the one error body
when it is an error, and no traceback may reach the log.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.servers import serve

ADMIN = "k-admin"
PHISH, LEGIT = "zebra-phish", "zebra-legit"


@pytest.fixture(scope="module")
def server(tiny_llama, tiny_bundles):
    from phishlens.server.settings import Settings

    root, _, _ = tiny_bundles
    settings = Settings(
        backend="hf",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=[PHISH, LEGIT],
        default_adapter=PHISH,
        admin_keys=[ADMIN],
        drift_enabled=False,
        explain_warmup=False,
        explain_max_evals=16,
        explain_default_max_evals=8,
        max_model_len=512,
    )
    with serve(settings) as live:
        yield live


def post_raw(
    url: str,
    path: str,
    body: bytes,
    ctype: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """POST with http.client (no client-side encoding or validation in the way)."""
    host = url.removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=300)
    hdrs = {"Content-Length": str(len(body))}
    if ctype is not None:
        hdrs["Content-Type"] = ctype
    hdrs.update(headers or {})
    conn.request("POST", path, body=body, headers=hdrs)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def error_of(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw)
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"} and body["error"]["message"]
    return body["error"]


# --- regression: lone surrogates ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/classify", "/v1/explain", "/v1/probe"])
def test_lone_surrogate_is_a_clear_422_logged_without_traceback(server, path):
    before = len(server.logs.lines)
    status, _, raw = post_raw(server.url, path, b'{"input": "hello \\ud800"}')
    assert status == 422, raw
    err = error_of(raw)
    assert err["type"] == "validation_error"
    assert "input" in err["message"] and "surrogate" in err["message"] and "U+D800" in err["message"]
    assert "Traceback" not in "\n".join(server.logs.lines[before:])


def test_surrogate_pairs_are_text_not_errors(server):
    """An emoji escaped as a UTF-16 pair (what json.dumps and JavaScript send) is valid and scored."""
    status, _, raw = post_raw(server.url, "/v1/classify", json.dumps({"input": "hi 😀 zebra"}).encode())
    assert status == 200, raw
    assert json.loads(raw)["data"][0]["adapter"]["name"] == PHISH


# --- regression: over-cap body read by a client that writes everything first -------------------------
def test_12mb_body_with_urllib_reads_the_413(server):
    body = json.dumps({"input": "x" * (12 * 1024 * 1024)}).encode()
    req = urllib.request.Request(
        server.url + "/v1/classify", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=120)
    assert info.value.code == 413
    assert error_of(info.value.read())["type"] == "payload_too_large"


def test_chunked_over_cap_body_reads_the_413(server):
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=120)
    chunk = b"x" * (1024 * 1024)
    conn.request(
        "POST",
        "/v1/classify",
        body=iter([b'{"input": "'] + [chunk] * 6 + [b'"}']),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    r = conn.getresponse()
    assert r.status == 413 and error_of(r.read())["type"] == "payload_too_large"
    conn.close()


# --- the hostile corpus ---------------------------------------------------------------------------------
def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


WORDS = ["please", "verify", "account", "invoice", "zebra", "meeting", "lunch", "urgent", "password", "bank"]
MANY_TOKENS = " ".join(WORDS[i % len(WORDS)] + str(i) for i in range(9000))[:99_000]

# (name, body, content type, expected status or None for "any non-5xx")
CORPUS: list[tuple[str, bytes, str | None, int | None]] = [
    ("lone high surrogate", b'{"input": "a\\ud800b"}', "application/json", 422),
    ("lone low surrogate", b'{"input": "\\udc00"}', "application/json", 422),
    ("reversed pair", b'{"input": "x\\udc00\\ud800"}', "application/json", 422),
    ("surrogate in a list", b'{"input": ["fine", "bad \\udfff"]}', "application/json", 422),
    ("surrogate in the adapter name", b'{"input": "x", "adapter": "\\ud800"}', "application/json", 422),
    ("surrogate in a key", b'{"\\ud800": 1, "input": "x"}', "application/json", 422),
    ("escaped backslash before u", b'{"input": "path\\\\ud800"}', "application/json", 200),
    (
        "NUL and control characters",
        _j({"input": "a\x00b\x01c\x1b[31m\x7f\x9f zebra"}),
        "application/json",
        200,
    ),
    ("only NULs", _j({"input": "\x00\x00\x00"}), "application/json", 200),
    ("invalid UTF-8 bytes", b'{"input": "\xff\xfe\xc3\x28 bad"}', "application/json", 400),
    ("CESU-8 surrogate bytes", b'{"input": "\xed\xa0\x80"}', "application/json", 422),
    (
        "UTF-16 lone surrogate",
        '{"input": "a'.encode("utf-16-le") + b"\x00\xd8" + '"}'.encode("utf-16-le"),
        "application/json",
        422,
    ),
    ("UTF-16 body", '{"input": "hello"}'.encode("utf-16"), "application/json", None),
    ("BOM-prefixed body", b"\xef\xbb\xbf" + _j({"input": "hello"}), "application/json", None),
    ("deep nested array", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    (
        "deep nested input",
        _j({"input": "x"})[:-1] + b', "adapters": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "application/json",
        400,
    ),
    (
        "nested input",
        _j({"input": "x"})[:-1] + b', "adapters": ' + b"[" * 500 + b"]" * 500 + b"}",
        "application/json",
        422,
    ),
    ("deep nested object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json", 400),
    ("huge integer", b'{"input": "x", "adapter": 1' + b"0" * 5000 + b"}", "application/json", 400),
    ("big integer", b'{"input": "x", "adapter": 1' + b"0" * 4000 + b"}", "application/json", 422),
    ("huge float", b'{"input": 1e400}', "application/json", 422),
    ("NaN literal", b'{"input": NaN}', "application/json", 422),
    ("Infinity literal", b'{"input": ["x"], "adapters": [Infinity]}', "application/json", 422),
    ("number as input", b'{"input": 12345678901234567890}', "application/json", 422),
    ("null input", b'{"input": null}', "application/json", 422),
    ("object input", b'{"input": {"text": "x"}}', "application/json", 422),
    ("empty input", b'{"input": ""}', "application/json", 422),
    ("whitespace input", _j({"input": " \t\n\u00a0"}), "application/json", 422),
    ("empty list", b'{"input": []}', "application/json", 422),
    ("unknown field", b'{"input": "x", "evil": true}', "application/json", 422),
    ("duplicate keys", b'{"input": "x", "input": "y"}', "application/json", 200),
    ("truncated JSON", b'{"input": "x', "application/json", 400),
    ("empty body", b"", "application/json", 422),
    ("JSON array body", b'["x"]', "application/json", 422),
    ("JSON string body", b'"x"', "application/json", 422),
    ("XML body", b"<input>x</input>", "application/xml", 422),
    ("JSON as XML type", _j({"input": "x"}), "application/xml", 422),
    (
        "multipart body",
        b'--b\r\nContent-Disposition: form-data; name="input"\r\n\r\nx\r\n--b--\r\n',
        "multipart/form-data; boundary=b",
        422,
    ),
    ("form body", b"input=hello", "application/x-www-form-urlencoded", 400),
    ("no content type", _j({"input": "x zebra"}), None, 200),
    ("odd content type", _j({"input": "x"}), "application/x-evil; charset=ebcdic", 422),
    ("100,000-character word", _j({"input": "a" * 100_000}), "application/json", 200),
    ("100,001 characters", _j({"input": "a" * 100_001}), "application/json", 413),
    (
        "zero-width and bidi",
        _j({"input": "\u200b\u200c\u200d\u2060\ufeff\u202e\u2066pay\u2069 now \u061c"}),
        "application/json",
        200,
    ),
    ("only zero-width", _j({"input": "\u200b\u200b\u200b"}), "application/json", None),  # pipeline-defined
    ("emoji only", _j({"input": "😀🎣🔥👨‍👩‍👧‍👦🏳️‍🌈" * 20}), "application/json", 200),
    ("combining marks", _j({"input": "z" + "\u0301" * 5000}), "application/json", 200),
    ("thousands of tokens", _j({"input": MANY_TOKENS}), "application/json", 200),
    ("65 texts", _j({"input": ["x"] * 65}), "application/json", 413),
    ("unknown adapter", _j({"input": "x", "adapter": "nope"}), "application/json", 404),
    ("adapter path traversal", _j({"input": "x", "adapter": "../../etc/passwd"}), "application/json", 404),
    (
        "1000 adapters",
        _j({"input": "x", "adapters": [f"a{i}" for i in range(1000)]}),
        "application/json",
        None,
    ),
]


def _routes_for(name: str) -> list[str]:
    return ["/v1/classify", "/v1/explain", "/v1/probe", f"/v1/models/{PHISH}:predict", "/v1/feedback"]


@pytest.mark.parametrize("name,body,ctype,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_corpus_never_5xx(server, name, body, ctype, expected):
    before = len(server.logs.lines)
    status, _, raw = post_raw(server.url, "/v1/classify", body, ctype)
    assert status < 500, (name, status, raw[:300])
    if expected is not None:
        assert status == expected, (name, status, raw[:300])
    if status >= 400:
        error_of(raw)
    # the same body on every other POST route: each answers, none with a 5xx
    for path in _routes_for(name)[1:]:
        status, _, raw = post_raw(server.url, path, body, ctype)
        assert status < 500, (name, path, status, raw[:300])
        if status >= 400:
            error_of(raw)
    assert "Traceback" not in "\n".join(server.logs.lines[before:])


def test_hostile_texts_on_the_text_fields_of_each_route(server):
    """Valid JSON carrying each hostile text in the field each route reads: classify, explain, probe,
    KServe."""
    texts = ["a\x00b", "\u202e\u2066x", "😀" * 30, "z" + "\u0301" * 400, MANY_TOKENS, "\ufeff", "\u200b"]
    bodies = {
        "/v1/classify": lambda t: {"input": [t, t]},
        "/v1/explain": lambda t: {"input": t, "max_evals": 8},
        "/v1/probe": lambda t: {"input": t},
        f"/v1/models/{LEGIT}:predict": lambda t: {"instances": [t]},
    }
    for path, make in bodies.items():
        for t in texts:
            status, _, raw = post_raw(server.url, path, _j(make(t)))
            assert status < 500, (path, repr(t[:20]), status, raw[:300])
            if status >= 400:
                assert error_of(raw)["type"] in {"payload_too_large", "validation_error"}, raw
    assert "Traceback" not in server.logs.text()
