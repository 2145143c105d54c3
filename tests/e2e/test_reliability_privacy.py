"""Privacy: no request text in logs, /metrics or error bodies, on every route, including failing requests.

Each request carries a unique marker inside a hostile text (NUL, bidi, emoji, surrogates, over-long).
The server (real uvicorn, HF backend on the tiny Llama, drift monitor on) is driven through every text
route, through refusals (413, 422, 404) and through engine faults (424, and a 500 from a crash: the one
mock here, for faults a healthy engine cannot be made to produce). Then every log line the process
wrote, the /metrics page, every response body and GET /v1/drift are searched for every marker.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.servers import serve

KEY, EXPLAIN, ADMIN = "k-user", "k-explain", "k-admin"
PHISH, LEGIT = "zebra-phish", "zebra-legit"


@pytest.fixture(scope="module")
def server(tiny_llama, tiny_bundles, tmp_path_factory):
    from phishlens.server.settings import Settings

    root, _, _ = tiny_bundles
    settings = Settings(
        backend="hf",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=[PHISH, LEGIT],
        default_adapter=PHISH,
        api_keys=[KEY],
        explain_keys=[EXPLAIN],
        admin_keys=[ADMIN],
        explain_warmup=False,
        explain_max_evals=12,
        explain_default_max_evals=8,
        explain_max_features=64,
        max_chars=2000,
        max_model_len=512,
        drift_eval_every=1,
        drift_state_dir=tmp_path_factory.mktemp("drift"),
        audit_log=tmp_path_factory.mktemp("audit") / "audit.jsonl",
    )
    with serve(settings) as live:
        yield live


def marker() -> str:
    return f"mrk{uuid.uuid4().hex[:16]}"


def test_no_request_text_in_logs_metrics_or_error_bodies(server, monkeypatch):
    from phishlens.server.backends.base import BackendError

    markers: list[str] = []
    bodies: list[str] = []

    def text(template: str) -> str:
        m = marker()
        markers.append(m)
        return template.format(m=m)

    h = {"X-API-Key": EXPLAIN}
    with server.http(headers=h) as c:

        def post(path: str, payload: object, expect: set[int], raw: bytes | None = None) -> None:
            if raw is not None:
                r = c.post(path, content=raw, headers={"content-type": "application/json"})
            else:
                r = c.post(path, json=payload)
            assert r.status_code in expect, (path, r.status_code, r.text[:300])
            bodies.append(r.text)

        hostile = [
            "urgent {m} verify now",
            "a\x00b {m}\x01",
            "\u202e{m}\u2066 pay",
            "😀{m}😀",
            "zebra {m} zebra",
        ]
        for t in hostile:  # served, through every text route
            post("/v1/classify", {"input": [text(t), text(t)]}, {200})
            post("/v1/classify", {"input": text(t), "adapters": [PHISH, LEGIT]}, {200})
            post(f"/v1/models/{LEGIT}:predict", {"instances": [text(t)]}, {200})
        post("/v1/explain", {"input": text("reply {m} urgent"), "max_evals": 8}, {200})
        post(f"/v1/models/{PHISH}:explain", {"instances": [text("reply {m} now")], "max_evals": 8}, {200})
        post("/v1/probe", {"input": text("zebra {m} lunch")}, {200})
        # refused: over the caps, invalid text, unknown adapter, bad feedback
        post("/v1/classify", {"input": text("{m} ") + "x" * 3000}, {413})
        post("/v1/classify", {"input": [text("{m}")] * 70}, {413})
        post("/v1/explain", {"input": " ".join(text("{m}") for _ in range(80))}, {413})
        post(
            "/v1/classify", None, {422}, raw=json.dumps({"input": text("{m} ")})[:-2].encode() + b'\\ud800"}'
        )
        post("/v1/probe", None, {422}, raw=b'{"input": "' + text("{m}").encode() + b'\\udc00"}')
        post("/v1/classify", {"input": text("{m}"), "adapter": "no-such"}, {404})
        post("/v1/classify", {"input": text("{m}"), "extra": text("{m}")}, {422})
        post(
            "/v1/feedback",
            {"request_id": text("{m}"), "labels": [{"index": 0, "label": "phishing"}]},
            {404, 422},
        )
        post("/v1/classify", None, {400}, raw=b'{"input": "' + text("{m}").encode() + b'"')  # truncated JSON
        # engine faults: a failing engine (424) and a crash inside the service (500)
        backend = server.app.state.runtime.backend
        monkeypatch.setattr(backend, "score", _raise(BackendError("engine step failed")))
        post("/v1/classify", {"input": text("{m} engine down")}, {424})
        monkeypatch.setattr(backend, "score", _raise(RuntimeError("crash while scoring")))
        post("/v1/classify", {"input": text("{m} crash")}, {500})
        monkeypatch.undo()
        post("/v1/classify", {"input": text("back {m}")}, {200})
        time.sleep(1.0)  # let the drift worker take the texts in
        drift = c.get("/v1/drift")
        assert drift.status_code == 200
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and "phishlens_" in metrics.text
    logs = server.logs.text()
    assert "unhandled RuntimeError" in logs  # the crash was logged (once), just without its text
    assert len(markers) > 30
    audit = server.settings.audit_log.read_text() if server.settings.audit_log.exists() else ""
    places = {
        "logs": logs,
        "metrics": metrics.text,
        "drift": drift.text,
        "audit": audit,
        "error bodies": "\n".join(b for b in bodies if '"error"' in b),
    }
    leaks = {where: [m for m in markers if m in blob] for where, blob in places.items()}
    assert all(not v for v in leaks.values()), leaks


def _raise(exc: Exception):
    async def score(*_a, **_k):
        raise exc

    return score
