"""Per-request state stays bounded (docs/reliability.md, RSS soak): once the drift windows, the live and
expected performance windows and the feedback ledger are full, more classify and feedback requests with
texts never seen before leave the Python heap where it was.

In-process app (fake engine, real MiniLM embeddings, drift monitor, OOD flags, feedback journal), small
caps so that they fill during the warm-up; tracemalloc then measures what the phishlens code itself
allocated and kept over 100 further requests with distinct texts, once the structures' contents are
themselves traced allocations (so replacing them counts nothing).
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from pathlib import Path

from fastapi.testclient import TestClient

from phishlens.server.app import create_app
from phishlens.server.settings import Settings
from tests.api.test_drift_api import WINDOW, embedder, root  # noqa: F401 - fixtures: a bundle with a reference
from tests.fakes import FakeBackend
from tests.unit.test_drift_monitor import sms

API = {"Authorization": "Bearer k-user"}
PROJECT = str(Path(__file__).resolve().parents[2])
MAX_LEDGER_ITEMS = 40


def traffic(c: TestClient, texts: list[str], rng: random.Random) -> None:
    """One classify request per pair of texts (both adapters), feedback for every other answer."""
    for i in range(0, len(texts), 2):
        pair = texts[i : i + 2]
        r = c.post("/v1/classify", json={"input": pair, "adapters": ["default", "alt"]}, headers=API)
        assert r.status_code == 200, r.text
        if i % 4 == 0:
            labels = [{"index": k, "label": rng.choice(["phishing", "legitimate"])} for k in range(len(pair))]
            f = c.post("/v1/feedback", json={"request_id": r.json()["id"], "labels": labels}, headers=API)
            assert f.status_code == 200, f.text


def project_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> tuple[int, list[str]]:
    """Bytes still held that were allocated in this project's own files, and the top sites."""
    keep = [
        tracemalloc.Filter(True, PROJECT + "/*"),
        tracemalloc.Filter(False, "*/tests/*"),
        tracemalloc.Filter(False, "*/.venv/*"),
    ]
    diffs = after.filter_traces(keep).compare_to(before.filter_traces(keep), "lineno")
    grown = [d for d in diffs if d.size_diff > 0]
    return sum(d.size_diff for d in grown), [f"{d.traceback[0]}: +{d.size_diff} B" for d in grown[:8]]


def test_distinct_texts_leave_per_request_state_bounded(root, tokenizer, smollm2_base, tmp_path):  # noqa: F811
    settings = Settings(
        adapter_roots=[root],
        adapters=["default", "alt"],
        api_keys=["k-user"],
        drift_window=WINDOW,
        drift_eval_every=5,
        drift_state_dir=tmp_path / "drift",
        feedback_state_dir=tmp_path / "feedback",
        feedback_window=10,
        performance_window=10,
        feedback_max_items=MAX_LEDGER_ITEMS,
    )
    rng = random.Random(0)
    texts = [f"{t} ref {i}" for i, t in enumerate(sms(600, seed=7))]  # every text distinct
    backend = FakeBackend(tokenizer, smollm2_base.sha256)
    with TestClient(create_app(settings, backend=backend)) as c:
        runtime = c.app.state.runtime

        def snapshot() -> tracemalloc.Snapshot:
            assert runtime.drift.flush()
            backend.calls.clear()  # the fake engine's own record of every request (not server state)
            gc.collect()
            return tracemalloc.take_snapshot()

        traffic(c, texts[:200], rng)  # warm-up: windows, ledger and caches fill
        tracemalloc.start()
        try:
            traffic(c, texts[200:400], rng)  # the full structures' contents are now traced allocations
            before = snapshot()
            traffic(c, texts[400:], rng)  # 100 more requests (200 new texts), 50 feedback requests
            after = snapshot()
        finally:
            tracemalloc.stop()
        grew, sites = project_growth(before, after)
        assert runtime.feedback.ledger.items <= MAX_LEDGER_ITEMS
    # measured: 3.9 KB; keeping each request id (one str per request) adds 22 KB and fails here
    assert grew < 12_000, f"phishlens code kept {grew} B more after 100 requests: {sites}"
