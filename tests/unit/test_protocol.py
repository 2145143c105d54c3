"""The one wire protocol (`phishlens.clients.protocol`): every route's documented example crosses both sides,
and every error type the server can emit reaches the client as its own exception class.

Response examples: server model → JSON as FastAPI writes it → the client's own parser for that route → equal.
Request examples: valid for the server's model, and the client's builder for that route produces a body the
server reads as the same request. A route without examples, or without a client call, fails here.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

import phishlens.server.services.feedback  # noqa: F401 - defines RequestNotFound (a server error class)
from phishlens.clients import PhishlensClient
from phishlens.clients import client as C
from phishlens.clients import protocol as W
from phishlens.clients.protocol import errors as E
from phishlens.server import errors as server_errors
from phishlens.server.app import create_app
from phishlens.server.settings import Settings

# JSON routes without a pydantic body: liveness/readiness/metrics are plain dicts or text (HealthStatus is
# the client's lenient reading of both), /ui is static files.
NOT_MODELLED = {("GET", "/health"), ("GET", "/ready")}


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(drift_enabled=False, ui_enabled=False))


@pytest.fixture(scope="module")
def spec(app) -> dict:
    return app.openapi()


def _ref(schema: dict | None) -> str | None:
    ref = (schema or {}).get("$ref")
    return ref.rsplit("/", 1)[1] if ref else None


def _operations(spec: dict) -> list[tuple[str, str, str | None, str | None]]:
    """(method, path, request model name, 2xx response model name) of every operation."""
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            resp = ok.get("content", {}).get("application/json", {}).get("schema")
            out.append((method.upper(), path, _ref(body), _ref(resp)))
    return out


def _examples(spec: dict, name: str) -> list[dict]:
    return spec["components"]["schemas"][name].get("examples", [])


# The client's call for each route: (call built from a request body, what the client returns from a response).
def _client_call(method: str, path: str, body: dict | None) -> C._Call:
    b = body or {}
    calls: dict[tuple[str, str], Callable[[], C._Call]] = {
        ("POST", "/v1/classify"): lambda: C._classify_call(
            b["input"], b.get("adapter"), b.get("adapters"), b.get("return_text", False)
        ),
        ("GET", "/v1/adapters"): lambda: C._LIST_ADAPTERS,
        ("POST", "/v1/adapters"): lambda: C._load_adapter_call(
            b["path"], b.get("name"), b.get("replace", False)
        ),
        ("DELETE", "/v1/adapters/{name}"): lambda: C._unload_adapter_call("a"),
        ("POST", "/v1/models/{name}:predict"): lambda: C._predict_call(
            "default", b["instances"], b.get("return_text", False)
        ),
        ("POST", "/v1/models/{name}:explain"): lambda: C._kserve_explain_call(
            "default",
            b["instances"][0],
            b.get("granularity", "word"),
            b.get("max_evals"),
            b.get("html", False),
            None,
            b.get("return_text", False),
        ),
        ("GET", "/v1/models/{name}"): lambda: C._model_info_call("default"),
        ("POST", "/v1/explain"): lambda: C._explain_call(
            b["input"],
            b.get("adapter"),
            b.get("granularity", "word"),
            b.get("max_evals"),
            b.get("html", False),
            None,
            b.get("return_text", False),
        ),
        ("POST", "/v1/probe"): lambda: C._probe_call(
            b["input"], b.get("adapter"), b.get("return_text", False)
        ),
        ("POST", "/v1/feedback"): lambda: C._feedback_call(b["request_id"], b["labels"], None),
        ("GET", "/v1/drift"): lambda: C._DRIFT,
    }
    assert (method, path) in calls, f"{method} {path} has no client call: add one to clients/client.py"
    return calls[(method, path)]()


def test_every_route_is_modelled_and_documented_with_examples(spec):
    ops = _operations(spec)
    assert len(ops) >= 12
    for method, path, req, resp in ops:
        if (method, path) in NOT_MODELLED:
            continue
        assert resp is not None, f"{method} {path} has no response model"
        assert getattr(W, resp) is not None  # defined in the protocol, not in the server
        assert _examples(spec, resp), f"{resp} ({method} {path}) has no OpenAPI example"
        if req is not None:
            assert isinstance(getattr(W, req), type) and _examples(spec, req), f"{req} has no example"
        _client_call(method, path, _examples(spec, req)[0] if req else None)  # the client covers the route


def test_response_examples_cross_both_sides(spec):
    seen = 0
    for method, path, _, resp in _operations(spec):
        if (method, path) in NOT_MODELLED:
            continue
        model: type[BaseModel] = getattr(W, resp)
        for example in _examples(spec, resp):
            served = model.model_validate(example)  # what a route returns
            wire = TypeAdapter(model).dump_json(served)  # as FastAPI serializes a response_model
            request = httpx.Request(method, "http://phishlens.test" + path)
            status = 201 if (method, path) == ("POST", "/v1/adapters") else 200
            parsed = _client_call(method, path, _first_request_example(spec, method, path)).parse(
                httpx.Response(
                    status, content=wire, headers={"content-type": "application/json"}, request=request
                )
            )
            if isinstance(served, W.AdapterList):
                assert parsed == served.data  # list_adapters() returns the entries
            elif isinstance(served, W.UnloadResponse):
                assert parsed is None  # unload_adapter() returns nothing
            elif isinstance(served, W.DriftResponse):
                assert parsed == served  # drift() unwraps .data from this parse
            else:
                assert parsed == served and type(parsed) is model
            assert _without_nulls(json.loads(wire)) == example  # the documented example is what is sent
            seen += 1
    assert seen >= 11


def _without_nulls(value: Any) -> Any:
    """FastAPI's OpenAPI document leaves null members out of examples."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _first_request_example(spec: dict, method: str, path: str) -> dict | None:
    for m, p, req, _ in _operations(spec):
        if (m, p) == (method, path) and req is not None:
            return _examples(spec, req)[0]
    return None


def test_request_examples_are_what_the_client_sends(spec):
    seen = 0
    for method, path, req, _ in _operations(spec):
        if req is None:
            continue
        model: type[BaseModel] = getattr(W, req)
        for example in _examples(spec, req):
            expected = model.model_validate(example)  # valid for the server
            sent = _client_call(method, path, example).json
            assert model.model_validate(json.loads(json.dumps(sent))) == expected, (method, path, example)
            seen += 1
    assert seen >= 10


def test_client_methods_take_every_request_field(spec):
    """Each optional request field can be set through the public client (drift guard)."""
    methods = {
        "/v1/explain": "explain",
        "/v1/probe": "probe",
        "/v1/classify": "classify",
        "/v1/models/{name}:predict": "predict",
        "/v1/models/{name}:explain": "kserve_explain",
    }
    for _method, path, req, _ in _operations(spec):
        if path not in methods:
            continue
        fields = set(getattr(W, req).model_fields) - {"input", "instances", "adapter", "adapters"}
        for cls in (C.PhishlensClient, C.AsyncPhishlensClient):
            params = set(inspect.signature(getattr(cls, methods[path])).parameters)
            assert fields <= params, (cls.__name__, path, fields - params)


# -- the error table ------------------------------------------------------------------------------------
def _server_error_classes() -> list[type[server_errors.PhishlensError]]:
    out, todo = [], [server_errors.PhishlensError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def test_every_server_error_type_is_in_the_table_with_its_status():
    classes = _server_error_classes()
    assert {c.type for c in classes} >= {"adapter_not_found", "request_not_found", "overloaded", "not_ready"}
    for cls in classes:
        assert cls.type in E.ERRORS, cls
        assert E.ERRORS[cls.type].status == cls.status, cls
    # what the handlers emit besides the exceptions: Starlette's statuses, the catch-all's 500
    emitted = set(server_errors._TYPE_BY_STATUS.values()) | {"internal_error", "http_error"}
    assert emitted <= set(E.ERRORS)


@pytest.mark.parametrize("kind", list(E.ERRORS.values()), ids=list(E.ERRORS))
def test_each_error_type_raises_its_own_client_class(kind: E.ErrorKind):
    status = kind.status or 415
    body = {"error": {"type": kind.type, "message": "m"}}
    err = E.parse_error(status, body)
    assert type(err) is kind.client and err.type == kind.type == kind.client.default_type
    assert (err.status, err.message) == (status, "m")


def test_error_classes_are_distinct_and_404s_share_a_base():
    assert len({k.client for k in E.ERRORS.values()}) == len(E.ERRORS)
    assert issubclass(E.RequestNotFoundError, E.NotFoundError) and issubclass(
        E.AdapterNotFoundError, E.NotFoundError
    )
    assert not issubclass(E.RequestNotFoundError, E.AdapterNotFoundError)


def test_errors_the_app_emits_reach_the_client_as_their_classes(app):
    """Real answers of the in-process app (no engine started: its routes answer 503)."""
    with PhishlensClient("http://testserver", http_client=TestClient(app), max_retries=0) as client:
        cases: list[tuple[Callable[[], Any], type[E.PhishlensError], str]] = [
            (lambda: client._send(C._Call("GET", "/v1/nope", C._parse_none)), E.NotFoundError, "not_found"),
            (
                lambda: client._send(C._Call("PUT", "/v1/classify", C._parse_none)),
                E.MethodNotAllowedError,
                "method_not_allowed",
            ),
            (lambda: client.classify("hello"), E.NotReadyError, "not_ready"),
        ]
        for call, cls, type_ in cases:
            with pytest.raises(E.PhishlensError) as e:
                call()
            assert type(e.value) is cls and e.value.type == type_, (cls, e.value)


def test_protocol_imports_neither_httpx_nor_the_server_nor_torch():
    code = (
        "import sys, phishlens.clients.protocol; "
        "print(sorted(m for m in ('httpx', 'fastapi', 'starlette', 'torch', 'phishlens.server', "
        "'phishlens.training', 'phishlens.clients.client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
