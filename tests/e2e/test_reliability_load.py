"""Load, overload and hot reload under load on the real vLLM server (tiny Llama, the e2e bundles), at
small sizes; `benchmarks/load.py` runs the same phases at full size on SmolLM2 with the shipped adapters.

Four adapter names are served (the two trained bundles, each also under a second name), mixed per
request. Asserted: 0 5xx, 0 lost, 0 answers whose sha256 is not the weights loaded under that name;
past the queue cap 429 with Retry-After and recovery; while `flip` is reloaded (`replace: true`) between
the two bundles (which disagree on the probe text) every request is answered (no 404 gap) and every
answer's label is the one its sha256's bundle gives.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_KEY, LEGIT, PHISH

pytestmark = pytest.mark.vllm

_spec = importlib.util.spec_from_file_location(
    "phishlens_bench_load", Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"
)
load_bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = load_bench  # dataclasses look their module up there
_spec.loader.exec_module(load_bench)

N, CLIENTS = 256, 32
PROBE = "please call the office about the zebra report"
TEXTS = [
    PROBE,
    "lunch meeting friday",
    "zebra invoice update please",
    "thanks for the agenda notes",
    "urgent zebra password reset",
    "draft budget review tomorrow",
]


@pytest.fixture(scope="module")
def four(live_server):
    """The e2e server with two more names over the same bundles; removed afterwards."""
    admin = {"X-API-Key": ADMIN_KEY}
    import httpx

    with httpx.Client(base_url=live_server.url, headers=admin, timeout=300) as c:
        for name, path in (("phish-2", PHISH), ("legit-2", LEGIT)):
            r = c.post("/v1/adapters", json={"path": path, "name": name})
            assert r.status_code == 201, r.text
        shas = {a["name"]: a["sha256"] for a in c.get("/v1/adapters").json()["data"]}
        yield {n: shas[n] for n in (PHISH, LEGIT, "phish-2", "legit-2")}
        for name in ("phish-2", "legit-2", "flip"):
            c.delete(f"/v1/adapters/{name}")


def test_mixed_adapter_load(live_server, four):
    assert four[PHISH] == four["phish-2"] and four[LEGIT] == four["legit-2"]
    p = asyncio.run(load_bench.run_load(live_server.url, four, TEXTS, N, CLIENTS, {}))
    print("\n" + load_bench.HEADER + "\n" + p.row())
    assert p.requests == N and p.status == {200: N}
    assert p.server_errors == 0 and p.lost == 0 and p.sha_mismatch == 0 and p.label_mismatch == 0


def test_overload_answers_429_with_retry_after_and_recovers(live_server, four):
    before, over, after = asyncio.run(
        load_bench.run_overload(live_server.url, TEXTS, 96, CLIENTS, live_server.settings.max_batch, {})
    )
    print("\n" + load_bench.HEADER + "\n" + "\n".join(p.row() for p in (before, over, after)))
    assert over.status.get(429, 0) > 0 and over.retry_after_missing == 0  # past the queue cap
    assert set(over.status) <= {200, 429}
    for p in (before, over, after):
        assert p.server_errors == 0 and p.lost == 0
    assert after.status == {200: 96}  # admission recovered: no 429 once the burst is answered
    # (throughput after / before is a performance figure: benchmarks/load.py reports it)


def test_hot_reload_under_load_every_answer_matches_its_sha(live_server, four):
    shas = {PHISH: four[PHISH], LEGIT: four[LEGIT]}
    assert shas[PHISH] != shas[LEGIT]
    # the two bundles disagree on the probe text: the label says which weights answered
    flip = {shas[PHISH]: "phishing", shas[LEGIT]: "legitimate"}
    p = asyncio.run(
        load_bench.run_reload(
            live_server.url,
            (PHISH, LEGIT),
            flip,
            PROBE,
            100_000,
            CLIENTS,
            reloads=12,
            headers={},
            admin_headers={"X-API-Key": ADMIN_KEY},
        )
    )
    print("\n" + load_bench.HEADER + "\n" + p.row())
    assert "12 reloads" in p.notes
    assert p.ok > 0 and set(p.status) == {200}  # replace=true swaps without a gap: no 404 while reloading
    assert p.server_errors == 0 and p.lost == 0 and p.sha_mismatch == 0 and p.label_mismatch == 0
