"""API keys with scopes on every route, constant-time comparison, and the admin audit log (in-process app).

Scopes: classify (PHISHLENS_API_KEYS), explain (PHISHLENS_EXPLAIN_KEYS: explain and probe), admin
(everything + adapter load/unload). /health and /ready are open; /metrics optionally needs a key.
"""

from __future__ import annotations

import json

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from phishlens.server import deps
from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests.fakes import FakeBackend

KEYS = {"classify": "k-classify", "explain": "k-explain", "admin": "k-admin"}
OPEN = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
REQUIRES = {deps.require_api_key: "classify", deps.require_explain: "explain", deps.require_admin: "admin"}


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory):
    return tmp_path_factory.mktemp("audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def app(adapter_root, tokenizer, smollm2_base, audit_path):
    settings = Settings(
        adapter_roots=[adapter_root],
        adapters=["default", "alt"],
        api_keys=[KEYS["classify"]],
        explain_keys=[KEYS["explain"]],
        admin_keys=[KEYS["admin"]],
        audit_log=audit_path,
        drift_enabled=False,
        explain_warmup=False,
        explain_engine="backend",
        explain_max_evals=8,
        explain_default_max_evals=8,
        metrics_require_key=True,
    )
    return create_app(settings, backend=FakeBackend(tokenizer, smollm2_base.sha256))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


def route_scope(route: APIRoute) -> str | None:
    """The strictest scope among the route's dependencies (None: open)."""
    found = {REQUIRES[d.call] for d in route.dependant.dependencies if d.call in REQUIRES}
    for scope in ("admin", "explain", "classify"):
        if scope in found:
            return scope
    return None


def test_every_route_but_health_and_ready_needs_a_scope(app):
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 13
    unguarded = [
        r.path
        for r in routes
        if route_scope(r) is None and r.path not in OPEN and not r.path.startswith("/ui")
    ]
    assert unguarded == [], f"routes without an API key dependency: {unguarded}"
    scopes = {r.path + ":" + ",".join(sorted(r.methods)): route_scope(r) for r in routes}
    assert scopes["/v1/explain:POST"] == scopes["/v1/probe:POST"] == "explain"
    assert scopes["/v1/models/{name}:explain:POST"] == "explain"
    assert scopes["/v1/classify:POST"] == scopes["/v1/models/{name}:predict:POST"] == "classify"
    assert scopes["/v1/adapters:POST"] == scopes["/v1/adapters/{name}:DELETE"] == "admin"


CALLS = [  # (method, path, json body, scope needed, status when granted)
    ("POST", "/v1/classify", {"input": "urgent reply"}, "classify", 200),
    ("POST", "/v1/models/default:predict", {"instances": ["hi"]}, "classify", 200),
    ("GET", "/v1/models/default", None, "classify", 200),
    ("GET", "/v1/adapters", None, "classify", 200),
    ("GET", "/v1/drift", None, "classify", 503),  # drift disabled here: authorised, then not ready
    ("POST", "/v1/feedback", {"request_id": "clf-0", "labels": ["phishing"]}, "classify", None),
    ("POST", "/v1/explain", {"input": "urgent reply now", "max_evals": 8}, "explain", 200),
    ("POST", "/v1/models/default:explain", {"instances": ["urgent reply"], "max_evals": 8}, "explain", 200),
    ("POST", "/v1/probe", {"input": "urgent"}, "explain", None),
    ("POST", "/v1/adapters", {"path": "spare", "name": "spare2"}, "admin", 201),
    ("DELETE", "/v1/adapters/spare2", None, "admin", 200),
    ("GET", "/metrics", None, "classify", 200),
]
RANK = {"classify": 0, "explain": 1, "admin": 2}


@pytest.mark.parametrize("method,path,body,scope,ok", CALLS, ids=[f"{c[0]} {c[1]}" for c in CALLS])
def test_scopes(client, method, path, body, scope, ok):
    def call(headers):
        return client.request(method, path, json=body, headers=headers)

    r = call({})
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized", r.text
    r = call({"Authorization": "Bearer not-a-key"})
    assert r.status_code in (401, 403), r.text  # unknown key: 401 (403 on admin routes, as before)
    for holder, key in KEYS.items():
        r = call({"X-API-Key": key})
        if RANK[holder] < RANK[scope]:
            assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden", (holder, r.text)
        else:
            assert r.status_code not in (401, 403), (holder, r.text)
            if ok is not None and holder == "admin":  # the admin call is the one that changes state
                assert r.status_code == ok, r.text
            if method != "GET" and scope == "admin":
                break  # load/unload once


def test_health_and_ready_are_open(client):
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200


def test_keys_are_compared_in_constant_time(monkeypatch):
    """Every configured key is compared (fixed-length digests) whichever matches, via hmac.compare_digest."""
    calls: list[tuple[int, int]] = []
    real = deps.hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", spy)
    settings = Settings(api_keys=["short", "a-much-longer-key-" * 4, "third"], admin_keys=["adm"])
    for presented in ("short", "third", "nope", "x" * 500):
        calls.clear()
        deps.key_scopes(settings, presented)
        assert len(calls) == 4  # 3 classify keys + 1 admin key, always all of them
        assert {n for pair in calls for n in pair} == {32}  # sha256 digests: lengths reveal nothing


def test_admin_actions_are_audited(client, audit_path):
    r = client.post(
        "/v1/adapters", json={"path": "spare", "name": "audited"}, headers={"X-API-Key": KEYS["admin"]}
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/v1/adapters",
        json={"path": "default", "name": "audited", "replace": True},
        headers={"X-API-Key": KEYS["admin"]},
    )
    assert r.status_code == 201, r.text
    assert client.delete("/v1/adapters/audited", headers={"X-API-Key": KEYS["admin"]}).status_code == 200
    assert client.delete("/v1/adapters/default", headers={"X-API-Key": KEYS["classify"]}).status_code == 403
    assert (
        client.post("/v1/adapters", json={"path": "/etc"}, headers={"X-API-Key": KEYS["admin"]}).status_code
        == 400
    )
    lines = [json.loads(x) for x in audit_path.read_text().splitlines()]
    mine = [
        x
        for x in lines
        if x.get("name") == "audited"
        or x["path"] in ("/v1/adapters/audited", "/v1/adapters/default")
        or x.get("bundle") == "/etc"
    ]
    load, swap = [x for x in lines if x.get("name") == "audited"]
    assert load["method"] == "POST" and load["status"] == 201 and load["outcome"] == "granted"
    assert load["path"] == "/v1/adapters" and load["bundle"] == "spare" and "replace" not in load
    assert swap["bundle"] == "default" and swap["replace"] is True and swap["status"] == 201
    assert load["key"] == deps.key_id(KEYS["admin"]) and KEYS["admin"] not in audit_path.read_text()
    unload = next(x for x in lines if x["path"] == "/v1/adapters/audited")
    assert unload["method"] == "DELETE" and unload["status"] == 200
    refused = next(x for x in lines if x["path"] == "/v1/adapters/default")
    assert (
        refused["status"] == 403
        and refused["outcome"] == "refused"
        and refused["key"] == deps.key_id(KEYS["classify"])
    )
    assert any(x.get("status") == 400 for x in mine)
    assert all(set(x) >= {"ts", "method", "path", "status", "outcome", "key", "client"} for x in lines)
    # classify traffic is not audited
    client.post("/v1/classify", json={"input": "x"}, headers={"X-API-Key": KEYS["classify"]})
    assert not any(x["path"] == "/v1/classify" for x in map(json.loads, audit_path.read_text().splitlines()))
