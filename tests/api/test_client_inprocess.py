"""The client against the real app in-process: `create_app` + FakeBackend, no sockets.

Async: `httpx.ASGITransport` (the app's lifespan is entered by hand: ASGITransport does not run it).
Sync: FastAPI's `TestClient` (an `httpx.Client`) passed as `http_client`.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from phishlens.clients import (
    AdapterNotFoundError,
    AsyncPhishlensClient,
    AuthenticationError,
    BackendError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PhishlensClient,
    ValidationError,
)
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests import fakes

PHISHY, CLEAN = "verify your account, urgent action required", "see you at lunch tomorrow"


def make_settings(root, **kw):
    base = dict(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        max_batch=4,
        max_chars=200,
    )
    return Settings(**{**base, **kw})


@pytest.fixture(scope="module")
def http(adapter_root, backend):
    with TestClient(create_app(make_settings(adapter_root), backend=backend)) as tc:
        yield tc


@pytest.fixture()
def client(http, backend):
    with PhishlensClient("http://testserver", api_key="k-user", http_client=http, backoff=0.0) as c:
        yield c
    backend.fail = None


def test_sync_round_trip(client):
    assert client.health().status == "ok"
    assert client.ready() is True
    client.wait_ready(timeout=5)
    resp = client.classify([PHISHY, CLEAN])
    assert [r.label for r in resp.data] == ["phishing", "legitimate"]
    assert resp.data[0].score == pytest.approx(fakes.expected_p(True), abs=1e-6)
    assert resp.data[0].probs["legitimate"] == pytest.approx(1 - resp.data[0].score, abs=1e-9)
    assert resp.data[0].adapter.name == "default" and len(resp.data[0].adapter.sha256) == 64
    assert resp.usage.texts == 2

    multi = client.classify([PHISHY], adapters=["default", "alt"])
    assert [r.adapter.name for r in multi.data] == ["default", "alt"]
    assert multi.data[1].score == pytest.approx(fakes.expected_p(True, temperature=2.0), abs=1e-6)


def test_classify_many_stays_under_the_batch_cap(client):
    texts = [PHISHY if i % 3 == 0 else CLEAN for i in range(11)]  # server cap is 4 per request
    out = client.classify_many(texts, batch_size=4, adapter="alt")
    assert [r.index for r in out] == list(range(11))
    assert [r.label == "phishing" for r in out] == [i % 3 == 0 for i in range(11)]
    with pytest.raises(PayloadTooLargeError):
        client.classify_many(texts, batch_size=5)


def test_adapters_and_kserve(client, http):
    names = {a.name: a for a in client.list_adapters()}
    assert set(names) == {"default", "alt"} and names["default"].default and not names["alt"].default
    assert client.predict("default", [PHISHY]).predictions[0].label == "phishing"
    assert client.model_info("alt").name == "alt"

    with pytest.raises(PermissionDeniedError):  # user key on an admin route
        client.load_adapter("spare")
    with PhishlensClient("http://testserver", api_key="k-admin", http_client=http) as admin:
        info = admin.load_adapter("spare", name="spare2")
        assert info.name == "spare2" and len(info.sha256) == 64
        assert "spare2" in {a.name for a in client.list_adapters()}
        admin.unload_adapter("spare2")
    assert "spare2" not in {a.name for a in client.list_adapters()}


def test_error_statuses_map_to_client_errors(client, http, backend):
    with pytest.raises(AdapterNotFoundError):
        client.classify(PHISHY, adapter="nope")
    with pytest.raises(ValidationError):
        client.classify([])
    with pytest.raises(PayloadTooLargeError):
        client.classify("x" * 500)
    with PhishlensClient("http://testserver", api_key="wrong", http_client=http) as bad:
        with pytest.raises(AuthenticationError):
            bad.classify(PHISHY)
    backend.fail = "engine exploded"
    with pytest.raises(BackendError, match="engine exploded"):
        client.classify(PHISHY)


def test_async_client_through_asgi_transport(adapter_root, tokenizer, smollm2_base):
    backend = fakes.FakeBackend(tokenizer, smollm2_base.sha256)
    app = create_app(make_settings(adapter_root), backend=backend)

    async def go():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncPhishlensClient("http://testserver", api_key="k-user", transport=transport) as c:
                await c.wait_ready(timeout=5)
                single = await c.classify(PHISHY)
                many = await c.classify_many([CLEAN, PHISHY, CLEAN, PHISHY, CLEAN], batch_size=2)
                with pytest.raises(AdapterNotFoundError):
                    await c.classify(PHISHY, adapter="nope")
                return single, many

    single, many = asyncio.run(go())
    assert single.data[0].label == "phishing"
    assert [r.label for r in many] == ["legitimate", "phishing"] * 2 + ["legitimate"]
    assert [r.index for r in many] == list(range(5))
    assert backend.closed
