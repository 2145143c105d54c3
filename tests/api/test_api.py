"""In-process HTTP tests: success paths, every error status of the contract, hot load/unload under traffic."""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import content_sha256
from tests.fakes import FakeBackend, expected_p, write_bundle

API = {"Authorization": "Bearer k-user"}
ADMIN = {"X-API-Key": "k-admin"}
PHISHY, CLEAN = "verify your account, urgent action required", "see you at lunch tomorrow"
TEMPS = {"default": 1.0, "alt": 2.0, "spare": 4.0}


def settings_for(root, **kw) -> Settings:
    base = dict(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        admin_keys=["k-admin"],
        max_batch=4,
        max_chars=200,
        max_queue=4,
        max_body_bytes=2048,
    )
    base.update(kw)
    return Settings(**base)


@pytest.fixture(scope="module")
def client(adapter_root, backend):
    with TestClient(create_app(settings_for(adapter_root), backend=backend)) as c:
        yield c
    assert backend.closed


@pytest.fixture(autouse=True)
def _reset(backend):
    yield
    backend.fail, backend.gate, backend.is_healthy = None, None, True


@pytest.fixture(scope="module")
def shas(adapter_root):
    return {n: content_sha256(adapter_root / n) for n in TEMPS}


def err(r, status, type_):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == type_ and body["error"]["message"]
    return body["error"]["message"]


# ---- success paths -----------------------------------------------------------------------------------
def test_health_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["adapters"] == ["alt", "default"]


def test_classify_single_and_batch(client, shas):
    r = client.post("/v1/classify", json={"input": PHISHY}, headers=API)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "classification" and body["id"].startswith("clf-")
    (res,) = body["data"]
    assert res["label"] == "phishing" and res["index"] == 0 and not res["uncertain"] and not res["truncated"]
    assert math.isclose(res["score"], expected_p(True), abs_tol=1e-9)
    assert math.isclose(res["probs"]["phishing"] + res["probs"]["legitimate"], 1.0, abs_tol=1e-12)
    assert res["adapter"] == {"name": "default", "sha256": shas["default"]}
    assert body["usage"]["texts"] == 1 and body["usage"]["prompt_tokens"] > 10

    r = client.post("/v1/classify", json={"input": [CLEAN, PHISHY], "adapter": "alt"}, headers=API)
    data = r.json()["data"]
    assert [d["label"] for d in data] == ["legitimate", "phishing"] and [d["index"] for d in data] == [0, 1]
    assert math.isclose(data[1]["score"], expected_p(True, 2.0), abs_tol=1e-9)
    assert {d["adapter"]["name"] for d in data} == {"alt"}


def test_classify_multi_adapter(client, backend, shas):
    backend.calls.clear()
    r = client.post(
        "/v1/classify", json={"input": [PHISHY, CLEAN], "adapters": ["alt", "default"]}, headers=ADMIN
    )
    data = r.json()["data"]
    assert [(d["index"], d["adapter"]["name"]) for d in data] == [
        (0, "alt"),
        (0, "default"),
        (1, "alt"),
        (1, "default"),
    ]
    for d in data:
        assert d["adapter"]["sha256"] == shas[d["adapter"]["name"]]
        assert math.isclose(
            d["score"], expected_p(d["index"] == 0, TEMPS[d["adapter"]["name"]]), abs_tol=1e-9
        )
    assert len(backend.calls) == 1 and r.json()["usage"]["texts"] == 2


def test_kserve_and_adapter_list(client, shas):
    r = client.post("/v1/models/alt:predict", json={"instances": [PHISHY, {"text": CLEAN}]}, headers=API)
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == ["phishing", "legitimate"] and preds[0]["adapter"]["name"] == "alt"
    meta = client.get("/v1/models/default", headers=API).json()
    assert meta["name"] == "default" and meta["ready"] and meta["sha256"] == shas["default"]
    listed = client.get("/v1/adapters", headers=API).json()
    assert [(a["name"], a["default"]) for a in listed["data"]] == [("alt", False), ("default", True)]


def test_truncated_flag(client):
    r = client.post("/v1/classify", json={"input": "hi, urgent" + " a" * 90}, headers=API)
    assert r.json()["data"][0]["truncated"] is True


# ---- every error status ------------------------------------------------------------------------------
def test_400_malformed_json(client):
    r = client.post(
        "/v1/classify", content=b'{"input": "x",', headers={**API, "content-type": "application/json"}
    )
    err(r, 400, "bad_request")


def test_401_missing_or_unknown_key(client):
    err(client.post("/v1/classify", json={"input": "x"}), 401, "unauthorized")
    err(client.post("/v1/classify", json={"input": "x"}, headers={"X-API-Key": "nope"}), 401, "unauthorized")
    err(client.get("/v1/adapters"), 401, "unauthorized")


def test_403_admin(client, adapter_root, backend):
    err(
        client.post("/v1/adapters", json={"path": "spare"}, headers=API), 403, "forbidden"
    )  # not an admin key
    err(client.delete("/v1/adapters/alt"), 401, "unauthorized")
    app = create_app(
        settings_for(adapter_root, admin_keys=[], api_keys=[], adapters=["default"]),
        backend=FakeBackend(backend.tokenizer, backend.base_sha256),
    )
    with TestClient(app) as c:
        msg = err(c.post("/v1/adapters", json={"path": "spare"}, headers=ADMIN), 403, "forbidden")
        assert "no admin key" in msg
        err(c.delete("/v1/adapters/default", headers=ADMIN), 403, "forbidden")
        assert c.post("/v1/classify", json={"input": "x"}).status_code == 200  # no api keys: open


def test_404_unknown_adapter(client):
    err(
        client.post("/v1/classify", json={"input": "x", "adapter": "ghost"}, headers=API),
        404,
        "adapter_not_found",
    )
    err(
        client.post("/v1/classify", json={"input": "x", "adapters": ["alt", "ghost"]}, headers=API),
        404,
        "adapter_not_found",
    )
    err(
        client.post("/v1/models/ghost:predict", json={"instances": ["x"]}, headers=API),
        404,
        "adapter_not_found",
    )
    err(client.get("/v1/models/ghost", headers=API), 404, "adapter_not_found")
    err(client.delete("/v1/adapters/ghost", headers=ADMIN), 404, "adapter_not_found")
    err(client.get("/no/such/route"), 404, "not_found")


def test_413_body_batch_chars(client):
    err(client.post("/v1/classify", json={"input": "x" * 3000}, headers=API), 413, "payload_too_large")

    def chunks():  # no Content-Length: the middleware counts streamed bytes
        yield b'{"input": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    r = client.post("/v1/classify", content=chunks(), headers={**API, "content-type": "application/json"})
    err(r, 413, "payload_too_large")
    assert "5 texts" in err(
        client.post("/v1/classify", json={"input": ["a"] * 5}, headers=API), 413, "payload_too_large"
    )
    assert "input[1]" in err(
        client.post("/v1/classify", json={"input": ["a", "b" * 201]}, headers=API), 413, "payload_too_large"
    )


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ({"input": ""}, "input[0] is empty"),
        ({"input": []}, "at least one"),
        ({"input": ["ok", "  "]}, "input[1] is empty"),
        ({"input": "x", "adapter": "alt", "adapters": ["alt"]}, "either"),
        ({"input": "x", "adapters": []}, "adapters"),
        ({"input": "x", "adapters": ["alt", "alt"]}, "repeat"),
        ({"text": "x"}, "input"),
        ({"input": 3}, "input"),
    ],
)
def test_422_validation(client, payload, fragment):
    assert fragment in err(client.post("/v1/classify", json=payload, headers=API), 422, "validation_error")


def test_422_kserve(client):
    err(client.post("/v1/models/alt:predict", json={"instances": []}, headers=API), 422, "validation_error")


def test_429_queue_full(client, backend):
    backend.gate = threading.Event()
    service = client.app.state.runtime.classify
    with ThreadPoolExecutor(2) as pool:
        futs = [
            pool.submit(client.post, "/v1/classify", json={"input": ["a", "b"]}, headers=API)
            for _ in range(2)
        ]
        deadline = time.time() + 10
        while service.inflight < 4 and time.time() < deadline:
            time.sleep(0.01)
        r = client.post("/v1/classify", json={"input": "c"}, headers=API)
        err(r, 429, "overloaded")
        assert r.headers["retry-after"] == "1"
        backend.gate.set()
        assert [f.result().status_code for f in futs] == [200, 200]
    assert service.inflight == 0


def test_503_not_ready(client, backend, adapter_root):
    backend.is_healthy = False
    err(client.get("/ready"), 503, "not_ready")
    backend.is_healthy = True
    assert client.get("/ready").status_code == 200
    bare = create_app(settings_for(adapter_root), backend=FakeBackend(backend.tokenizer, backend.base_sha256))
    c = TestClient(bare)  # lifespan not run: the engine was never started
    err(c.get("/ready"), 503, "not_ready")
    err(c.post("/v1/classify", json={"input": "x"}, headers=API), 503, "not_ready")
    assert c.get("/health").status_code == 200


def test_424_backend_failure(client, backend):
    backend.fail = "CUDA error: device-side assert"
    msg = err(client.post("/v1/classify", json={"input": "x"}, headers=API), 424, "backend_failure")
    assert "device-side assert" in msg


def test_500_sanitised(adapter_root, backend, monkeypatch, caplog):
    app = create_app(
        settings_for(adapter_root, api_keys=[]), backend=FakeBackend(backend.tokenizer, backend.base_sha256)
    )
    with TestClient(app, raise_server_exceptions=False) as c:

        async def boom(texts, *a, **k):
            raise RuntimeError(f"secret {texts[0]}")

        monkeypatch.setattr(app.state.runtime.classify, "classify", boom)
        r = c.post("/v1/classify", json={"input": "internal detail"})
        assert err(r, 500, "internal_error") == "internal server error" and "secret" not in r.text
    # logged once, as type and frames; the message is withheld (it may quote request text)
    assert caplog.text.count("unhandled RuntimeError on POST /v1/classify") == 1
    assert "in boom" in caplog.text and "secret internal detail" not in caplog.text


# ---- adapter management ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["../default", "/etc", "/etc/passwd", "default/../../x", "..", "/tmp"])
def test_load_path_traversal_refused(client, path):
    msg = err(client.post("/v1/adapters", json={"path": path}, headers=ADMIN), 400, "bad_request")
    assert "passwd" not in msg or "outside" in msg


def test_load_unload_and_cap(client, shas):
    r = client.post("/v1/adapters", json={"path": "spare", "name": "spare-x"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["sha256"] == shas["spare"]
    err(
        client.post("/v1/adapters", json={"path": "spare", "name": "spare-x"}, headers=ADMIN),
        400,
        "bad_request",
    )
    res = client.post("/v1/classify", json={"input": PHISHY, "adapter": "spare-x"}, headers=API).json()[
        "data"
    ][0]
    assert math.isclose(res["score"], expected_p(True, 4.0), abs_tol=1e-9)
    assert client.delete("/v1/adapters/spare-x", headers=ADMIN).json() == {
        "name": "spare-x",
        "unloaded": True,
    }
    err(
        client.post("/v1/classify", json={"input": "x", "adapter": "spare-x"}, headers=API),
        404,
        "adapter_not_found",
    )


def test_cap_reached(adapter_root, backend):
    app = create_app(
        settings_for(adapter_root, max_loaded_adapters=2),
        backend=FakeBackend(backend.tokenizer, backend.base_sha256),
    )
    with TestClient(app) as c:
        msg = err(c.post("/v1/adapters", json={"path": "spare"}, headers=ADMIN), 400, "bad_request")
        assert "cap reached" in msg


def test_hot_load_unload_under_traffic(client, backend, shas):
    """Requests and load/unload interleave; every answer names (and is scored by) what it asked for."""
    backend.delay = 0.002
    stop = threading.Event()
    seen: dict[int, int] = {}
    problems: list[str] = []

    def traffic(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            names = rng.sample(["default", "alt", "spare"], rng.randint(1, 2))
            r = client.post("/v1/classify", json={"input": [PHISHY, CLEAN], "adapters": names}, headers=API)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            if r.status_code == 404 and "spare" in names:
                continue
            if r.status_code != 200:
                problems.append(f"{names}: {r.status_code} {r.text}")
                continue
            data = r.json()["data"]
            if [d["adapter"]["name"] for d in data] != names * 2:
                problems.append(f"asked {names}, got {[d['adapter']['name'] for d in data]}")
            for d in data:
                name = d["adapter"]["name"]
                if d["adapter"]["sha256"] != shas[name] or not math.isclose(
                    d["score"], expected_p(d["index"] == 0, TEMPS[name]), abs_tol=1e-9
                ):
                    problems.append(f"wrong adapter result {d}")

    try:
        with ThreadPoolExecutor(3) as pool:
            futs = [pool.submit(traffic, s) for s in range(2)]  # 2 x 2 texts = max_queue
            for _ in range(8):
                assert client.post("/v1/adapters", json={"path": "spare"}, headers=ADMIN).status_code == 201
                time.sleep(0.03)
                assert client.delete("/v1/adapters/spare", headers=ADMIN).status_code == 200
                time.sleep(0.01)
            stop.set()
            for f in futs:
                f.result()
    finally:
        stop.set()
        backend.delay = 0.0
    assert not problems, problems[:5]
    assert seen.get(200, 0) > 10 and set(seen) <= {200, 404}, seen


# ---- metrics -----------------------------------------------------------------------------------------
def test_metrics_bounded_and_textless(client):
    secret = "zebra-quartz-unique-marker urgent"
    client.post("/v1/classify", json={"input": secret}, headers=API)
    client.post("/v1/classify", json={"input": "x", "adapter": "never-loaded-adapter"}, headers=API)
    r = client.get("/metrics")
    text = r.text
    assert r.status_code == 200 and "text/plain" in r.headers["content-type"]
    assert "zebra" not in text and "never-loaded-adapter" not in text
    assert 'phishlens_requests_total{route="/v1/classify",status="200"}' in text
    assert 'route="/v1/classify",status="404"' in text
    assert 'phishlens_classifications_total{adapter="default",label="phishing"}' in text
    assert 'phishlens_score_bucket{adapter="default",le="0.5"}' in text
    assert "phishlens_adapters_loaded 2.0" in text and "phishlens_inflight_texts 0.0" in text
    assert 'route="/metrics"' not in text and 'route="/health"' not in text


def test_curl_style_form_content_type_is_read_as_json(client):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; the README's example must still work."""
    body = b'{"input": "reply urgent with your password"}'
    r = client.post(
        "/v1/classify", content=body, headers={**API, "content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["label"] == "phishing"
    r = client.post(
        "/v1/classify",
        content=b"input=hello",
        headers={**API, "content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "bad_request"


def test_bundle_above_max_lora_rank_is_refused_with_the_reason(adapter_root, backend, tokenizer):
    write_bundle(adapter_root, "rank32", tokenizer=tokenizer, base_sha256=backend.base_sha256, r=32)
    app = create_app(
        settings_for(adapter_root, max_lora_rank=16),
        backend=FakeBackend(backend.tokenizer, backend.base_sha256),
    )
    with TestClient(app) as c:
        msg = err(c.post("/v1/adapters", json={"path": "rank32"}, headers=ADMIN), 400, "bad_request")
        assert "rank 32" in msg and "max_lora_rank 16" in msg
    app = create_app(settings_for(adapter_root), backend=FakeBackend(backend.tokenizer, backend.base_sha256))
    with TestClient(app) as c:  # the default (64) admits it
        assert c.post("/v1/adapters", json={"path": "rank32"}, headers=ADMIN).status_code == 201
