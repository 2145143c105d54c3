"""The HTTP client against `httpx.MockTransport`: parsing, errors, retries, batching; sync and async."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

import phishlens.clients as pc
from phishlens.clients import AsyncPhishlensClient, PhishlensClient
from phishlens.clients.protocol import errors

SHA = "ab" * 32


def result(index: int, p: float = 0.9, adapter: str = "default", **extra) -> dict:
    return {
        "index": index,
        "label": "phishing" if p >= 0.5 else "legitimate",
        "probs": {"phishing": p, "legitimate": 1 - p},
        "score": p,
        "uncertain": False,
        "truncated": False,
        "adapter": {"name": adapter, "sha256": SHA},
        "style": "sms",
        "style_source": "detected",
        **extra,
    }


def adapter(name: str, default: bool = False, **extra) -> dict:
    """An adapter as the server describes it (every field the protocol requires)."""
    return {
        "name": name,
        "sha256": SHA,
        "base_model": "smollm2",
        "default": default,
        "labels": ["phishing"],
        "created": "2026-11-20T00:00:00Z",
        "loaded_at": 1.0,
        "metrics": {},
        "calibration": {"threshold": 0.5, "uncertain_low": 0.4, "uncertain_high": 0.6, "temperature": 1.0},
        **extra,
    }


def classify_body(n: int, **extra) -> dict:
    return {
        "id": "cls-1",
        "object": "classification",
        "data": [result(i) for i in range(n)],
        "usage": {"texts": n, "prompt_tokens": 7 * n},
        **extra,
    }


def error_body(type_: str, message: str) -> dict:
    return {"error": {"type": type_, "message": message}}


class Recorder:
    """A MockTransport handler answering from a queue of responses (last one repeats), recording requests."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


def sync_client(handler, **kw) -> PhishlensClient:
    kw.setdefault("backoff", 0.0)
    transport = httpx.MockTransport(handler)
    return PhishlensClient("http://phishlens.test/", api_key="k-user", transport=transport, **kw)


def async_client(handler, **kw) -> AsyncPhishlensClient:
    kw.setdefault("backoff", 0.0)
    return AsyncPhishlensClient(
        "http://phishlens.test", api_key="k-user", transport=httpx.MockTransport(handler), **kw
    )


# ---- parsing -----------------------------------------------------------------------------------------
def test_classify_request_and_response():
    rec = Recorder(httpx.Response(200, json=classify_body(1, served_by="replica-3")))
    with sync_client(rec) as client:
        resp = client.classify("verify your account", adapter="alt")
    req = rec.requests[0]
    assert req.method == "POST" and str(req.url) == "http://phishlens.test/v1/classify"
    assert req.headers["authorization"] == "Bearer k-user"
    assert req.headers["user-agent"].startswith("phishlens-client/")
    assert rec.bodies() == [{"input": "verify your account", "adapter": "alt"}]
    assert resp.id == "cls-1" and resp.usage.prompt_tokens == 7
    r = resp.data[0]
    assert (r.label, r.score, r.probs["legitimate"], r.adapter.name, r.adapter.sha256) == (
        "phishing",
        0.9,
        pytest.approx(0.1),
        "default",
        SHA,
    )
    assert resp.model_extra == {"served_by": "replica-3"}  # extra fields are kept, not rejected


def test_classify_list_and_adapters_body():
    rec = Recorder(httpx.Response(200, json=classify_body(2)))
    with sync_client(rec) as client:
        client.classify(("a", "b"), adapters=["default", "alt"])
    assert rec.bodies() == [{"input": ["a", "b"], "adapters": ["default", "alt"]}]


def test_adapters_load_unload_and_kserve():
    listing = {
        "object": "list",
        "data": [adapter("default", True, metrics={"test": {"email": {"f1": 0.97}}}), adapter("alt")],
    }
    loaded = adapter("new")

    def handler(request: httpx.Request) -> httpx.Response:
        routes = {
            ("GET", "/v1/adapters"): httpx.Response(200, json=listing),
            ("POST", "/v1/adapters"): httpx.Response(201, json=loaded),
            ("DELETE", "/v1/adapters/new%2Fv2"): httpx.Response(200, json={"name": "new/v2"}),
            ("POST", "/v1/models/default:predict"): httpx.Response(
                200, json={"predictions": [result(0)], "id": "clf-1"}
            ),
            ("GET", "/v1/models/default"): httpx.Response(
                200, json={"name": "default", "ready": True, "sha256": SHA, "base_model": "smollm2"}
            ),
            ("GET", "/health"): httpx.Response(200, json={"status": "ok"}),
            ("GET", "/metrics"): httpx.Response(200, text="phishlens_requests_total 3\n"),
        }
        return routes.get((request.method, request.url.raw_path.decode()), httpx.Response(404))

    with sync_client(handler) as client:
        adapters = client.list_adapters()
        assert [a.name for a in adapters] == ["default", "alt"] and adapters[0].default
        assert adapters[0].metrics["test"]["email"]["f1"] == 0.97 and adapters[0].labels == ["phishing"]
        assert client.load_adapter("bundles/new", name="new").name == "new"
        assert client.unload_adapter("new/v2") is None
        assert client.predict("default", ["hi"]).predictions[0].label == "phishing"
        assert client.model_info("default").ready is True
        assert client.health().status == "ok"
        assert "phishlens_requests_total" in client.metrics()


def test_unexpected_body_is_a_typed_error():
    with sync_client(lambda r: httpx.Response(200, json={"nope": 1})) as client:
        with pytest.raises(errors.PhishlensError) as e:
            client.classify("x")
    assert e.value.type == "invalid_response" and type(e.value) is errors.PhishlensError


# ---- errors ------------------------------------------------------------------------------------------
STATUS_CASES = [
    (400, errors.BadRequestError, "bad_request"),
    (401, errors.AuthenticationError, "unauthorized"),
    (403, errors.PermissionDeniedError, "forbidden"),
    (404, errors.AdapterNotFoundError, "adapter_not_found"),
    (413, errors.PayloadTooLargeError, "payload_too_large"),
    (422, errors.ValidationError, "validation_error"),
    (424, errors.BackendError, "backend_failure"),
    (429, errors.OverloadedError, "overloaded"),
    (503, errors.NotReadyError, "not_ready"),
    (500, errors.InternalServerError, "internal_error"),
    (502, errors.ServerError, "bad_gateway"),
    (405, errors.MethodNotAllowedError, "method_not_allowed"),
    (404, errors.NotFoundError, "not_found"),  # the type decides between the 404s
    (404, errors.RequestNotFoundError, "request_not_found"),
    (415, errors.HTTPError, "http_error"),
    (418, errors.PhishlensError, "teapot"),  # neither type nor status documented
]


@pytest.mark.parametrize(("status", "cls", "type_"), STATUS_CASES)
def test_every_status_maps_to_its_error(status, cls, type_):
    handler = Recorder(httpx.Response(status, json=error_body(type_, f"boom {status}")))
    with sync_client(handler, max_retries=0) as client:
        with pytest.raises(cls) as e:
            client.classify("x")
    assert type(e.value) is cls
    assert (e.value.status, e.value.type, e.value.message) == (status, type_, f"boom {status}")
    assert str(e.value) == f"{status} {type_}: boom {status}"


@pytest.mark.parametrize(("status", "cls", "type_"), STATUS_CASES)
def test_every_status_maps_to_its_error_async(status, cls, type_):
    async def go():
        handler = Recorder(httpx.Response(status, json=error_body(type_, "m")))
        async with async_client(handler, max_retries=0) as client:
            await client.classify("x")

    with pytest.raises(cls):
        asyncio.run(go())


def test_parse_error_tolerates_other_bodies():
    e = errors.parse_error(422, {"detail": [{"loc": ["body", "input"], "msg": "field required"}]})
    assert isinstance(e, errors.ValidationError) and e.message == "body.input: field required"
    assert e.type == "validation_error"
    e = errors.parse_error(502, "<html>Bad Gateway</html>")
    assert isinstance(e, errors.ServerError) and "Bad Gateway" in e.message
    e = errors.parse_error(404, None)
    assert isinstance(e, errors.AdapterNotFoundError) and e.message == "HTTP 404"
    assert errors.parse_error(404, {}).is_client_error and not errors.parse_error(503, {}).is_client_error


def test_non_json_error_body():
    with sync_client(lambda r: httpx.Response(502, text="upstream down")) as client:
        with pytest.raises(errors.ServerError, match="upstream down"):
            client.health()


def test_transport_failure_is_connection_error():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with sync_client(refuse) as client:
        with pytest.raises(errors.ConnectionError) as e:
            client.classify("x")
    assert e.value.status is None and e.value.type == "connection_error" and not e.value.is_client_error
    with sync_client(slow) as client:
        with pytest.raises(errors.ConnectionError) as e:
            client.classify("x")
    assert e.value.type == "timeout"


# ---- retries -----------------------------------------------------------------------------------------
def test_retries_429_then_succeeds():
    rec = Recorder(
        httpx.Response(429, json=error_body("overloaded", "queue full")),
        httpx.Response(429, json=error_body("overloaded", "queue full")),
        httpx.Response(200, json=classify_body(1)),
    )
    with sync_client(rec) as client:
        assert client.classify("x").data[0].label == "phishing"
    assert len(rec.requests) == 3


def test_retries_are_bounded():
    rec = Recorder(httpx.Response(503, json=error_body("not_ready", "warming up")))
    with sync_client(rec, max_retries=2) as client:
        with pytest.raises(errors.NotReadyError, match="warming up"):
            client.classify("x")
    assert len(rec.requests) == 3  # first try + 2 retries
    rec = Recorder(httpx.Response(429, json=error_body("overloaded", "full")))
    with sync_client(rec, max_retries=0) as client, pytest.raises(errors.OverloadedError):
        client.classify("x")
    assert len(rec.requests) == 1


@pytest.mark.parametrize("status", [400, 422, 424, 500])
def test_no_retry_on_other_statuses(status):
    rec = Recorder(httpx.Response(status, json=error_body("x", "y")))
    with sync_client(rec, max_retries=5) as client, pytest.raises(errors.PhishlensError):
        client.classify("x")
    assert len(rec.requests) == 1


def test_backoff_schedule_and_retry_after(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("phishlens.clients.client.time.sleep", sleeps.append)
    rec = Recorder(
        httpx.Response(429),
        httpx.Response(429),
        httpx.Response(429),
        httpx.Response(429, headers={"Retry-After": "30"}),
        httpx.Response(200, json=classify_body(1)),
    )
    with sync_client(rec, max_retries=4, backoff=0.5) as client:
        client.classify("x")
    assert sleeps == [0.5, 1.0, 2.0, 8.0]  # exponential, then Retry-After capped at max_backoff


def test_async_retries_429():
    rec = Recorder(
        httpx.Response(429, json=error_body("overloaded", "full")), httpx.Response(200, json=classify_body(1))
    )

    async def go():
        async with async_client(rec) as client:
            return await client.classify("x")

    assert asyncio.run(go()).data[0].score == 0.9 and len(rec.requests) == 2


# ---- batching ----------------------------------------------------------------------------------------
def echo_classifier(request: httpx.Request) -> httpx.Response:
    """Scores text i as P = 0.5 + small step, returns results in reverse order to test re-ordering."""
    texts = json.loads(request.content)["input"]
    data = [result(i, p=float(t.split("-")[1]) / 1000) for i, t in enumerate(texts)]
    return httpx.Response(
        200, json={"id": "c", "data": data[::-1], "usage": {"texts": len(texts), "prompt_tokens": 0}}
    )


def test_classify_many_chunks_and_keeps_order():
    texts = [f"t-{i}" for i in range(10)]
    bodies: list[dict] = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return echo_classifier(request)

    with sync_client(handler) as client:
        out = client.classify_many(texts, batch_size=4, adapter="alt")
    assert [len(b["input"]) for b in bodies] == [4, 4, 2]
    assert all(b["adapter"] == "alt" for b in bodies)
    assert [r.index for r in out] == list(range(10))
    assert [r.score for r in out] == [i / 1000 for i in range(10)]
    with sync_client(handler) as client:
        assert client.classify_many([]) == []
        with pytest.raises(ValueError):
            client.classify_many(["a"], batch_size=0)


def test_iter_classify_streams_generators_with_progress(capsys):
    with sync_client(echo_classifier) as client:
        it = client.iter_classify((f"t-{i}" for i in range(5)), batch_size=2, progress=True)
        first = next(it)
        assert first.index == 0
        rest = list(it)
    assert [r.index for r in rest] == [1, 2, 3, 4]
    assert "classify" in capsys.readouterr().err  # the tqdm bar goes to stderr


def test_async_classify_many_and_wait_ready():
    calls = {"ready": 0}

    def handler(request):
        if request.url.path == "/ready":
            calls["ready"] += 1
            if calls["ready"] < 3:
                return httpx.Response(503, json=error_body("not_ready", "warming"))
            return httpx.Response(200, json={"status": "ready"})
        return echo_classifier(request)

    async def go():
        async with async_client(handler) as client:
            await client.wait_ready(timeout=5, interval=0.01)
            return await client.classify_many([f"t-{i}" for i in range(7)], batch_size=3)

    out = asyncio.run(go())
    assert [r.index for r in out] == list(range(7)) and calls["ready"] == 3


def test_ready_and_wait_ready_timeout():
    rec = Recorder(httpx.Response(503, json=error_body("not_ready", "golden checks failed")))
    with sync_client(rec, max_retries=2) as client:
        assert client.ready() is False
        assert len(rec.requests) == 1  # /ready is a probe: a 503 is an answer, not retried
        with pytest.raises(errors.NotReadyError, match="not ready after"):
            client.wait_ready(timeout=0.05, interval=0.01)
    with sync_client(lambda r: httpx.Response(401, json=error_body("unauthorized", "key"))) as client:
        with pytest.raises(errors.AuthenticationError):
            client.ready()


def test_wait_ready_survives_connection_refused():
    state = {"n": 0}

    def handler(request):
        state["n"] += 1
        if state["n"] < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "ready"})

    with sync_client(handler) as client:
        client.wait_ready(timeout=5, interval=0.01)
    assert state["n"] == 3


def test_injected_http_client_is_not_closed():
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"status": "ok"})))
    with PhishlensClient("http://x", http_client=http) as client:
        assert client.health().status == "ok"
    assert not http.is_closed
    http.close()


# ---- packaging ---------------------------------------------------------------------------------------
def test_public_api_exports():
    for name in pc.__all__:
        assert hasattr(pc, name), name
    assert issubclass(pc.ConnectionError, pc.PhishlensError)
    assert all(issubclass(cls, pc.PhishlensError) for _, cls, _ in STATUS_CASES)


def test_import_is_light():
    code = (
        "import sys, phishlens.clients, phishlens.clients.cli; "
        "heavy = [m for m in ('torch', 'vllm', 'transformers', 'phishlens.server', 'phishlens.training')"
        " if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_error_type_chooses_the_class_before_the_status():
    """Regression: feedback's 404 `request_not_found` was raised as AdapterNotFoundError (status-only map)."""
    e = errors.parse_error(404, {"error": {"type": "request_not_found", "message": "unknown request id"}})
    assert type(e) is errors.RequestNotFoundError and e.status == 404 and e.message == "unknown request id"
    assert (
        type(errors.parse_error(404, {"error": {"type": "adapter_not_found", "message": "x"}}))
        is errors.AdapterNotFoundError
    )
