"""Acceptance (issue 16): two real replicas behind no shared state, and a real Prometheus scraping both.

Two `python -m phishlens.server.main` processes (real uvicorn, real vLLM engine, SmolLM2 + the
`specialist-sms` bundle with its reference profile) share only `PHISHLENS_FEEDBACK_SECRETS`, as pods of one
Deployment do. Prometheus (Debian's binary, scrape/evaluation every second) loads deploy/prometheus/alerts.yml
unchanged and scrapes both as job `phishlens`.

- Feedback for a request replica A answered is recorded by replica B (signed request id, no shared store).
- Real SMS test rows (the specialist's style) split round-robin over the two replicas keep the fleet drift
  alert silent with more than its 150-text minimum in the window; real URL rows (a style it never saw) split
  the same way make PhishlensFleetDriftDetected fire — from the sum over replicas, although each replica
  alone holds under the alert's 150-text minimum of URLs.

Skips with the reason when prometheus, vLLM, the corpora or the bundle's reference profile are missing.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import require_vllm, spawn_smollm2
from tests.e2e.test_prometheus_drift import (
    ADAPTER,
    REPO,
    Prometheus,
    _ok,
    _wait,
    scalar,
    start_prometheus,
    stop,
    wait_for,
)

SECRET = "fleet-test-secret"
SMS_PER_LABEL = 100  # 200 in-distribution texts: over the fleet rule's 150-text minimum in its 15 minutes
URL_PER_LABEL = 70  # 140 URLs, 70 per replica: under the minimum on either replica alone
BATCH = 16
SERVER_START_S = 900.0  # two engines starting at once on a loaded 2-core host
FIRE_TIMEOUT_S = 240.0
ALERT = "PhishlensFleetDriftDetected"


@pytest.fixture(scope="module")
def replicas(smollm2_base, tmp_path_factory) -> list[str]:
    """Two independent servers (own processes, ports and drift state) with the same feedback secret."""
    require_vllm()
    from phishlens.training.contract.bundle import load_bundle

    if "reference" not in load_bundle(REPO / "adapters" / ADAPTER).manifest.extras:
        pytest.skip(f"adapters/{ADAPTER} has no drift reference profile")
    procs, urls = [], []
    try:
        for name in ("a", "b"):
            tmp = tmp_path_factory.mktemp(f"replica-{name}")
            proc, url, log = spawn_smollm2(  # both start at once; each is waited for below
                tmp,
                PHISHLENS_ADAPTERS=ADAPTER,
                PHISHLENS_DEFAULT_ADAPTER=ADAPTER,
                PHISHLENS_DRIFT_ENABLED="true",
                PHISHLENS_FEEDBACK_SECRETS=SECRET,
                PHISHLENS_DRIFT_EVAL_EVERY=str(BATCH),
                PHISHLENS_FEEDBACK_STATE_DIR=str(tmp / "feedback"),
            )
            procs.append((proc, log))
            urls.append(url)
        for (proc, log), url in zip(procs, urls):
            _wait(lambda u=url: _ok(f"{u}/ready"), SERVER_START_S, proc, log, f"replica {url}")
        yield urls
    finally:
        for proc, _ in procs:
            stop(proc)


@pytest.fixture(scope="module")
def fleet_prometheus(replicas, tmp_path_factory) -> Prometheus:
    prom = start_prometheus(
        tmp_path_factory.mktemp("prometheus"), [u.removeprefix("http://") for u in replicas]
    )
    try:
        wait_for(
            lambda: len(prom.query('up{job="phishlens"} == 1')) == 2, 30, "Prometheus to scrape both replicas"
        )
        yield prom
    finally:
        stop(prom.proc)


def split_classify(clients, rows) -> list[tuple[int, str, list]]:
    """Batches round-robin over the replicas, as a load balancer spreads them: (replica, id, rows)."""
    out = []
    for k, i in enumerate(range(0, len(rows), BATCH)):
        chunk = rows[i : i + BATCH]
        r = k % len(clients)
        out.append((r, clients[r].classify([x.text for x in chunk], adapter=ADAPTER).id, chunk))
    return out


def fleet_texts(prom: Prometheus) -> float:
    return scalar(prom, f'min(phishlens:drift_quantile_count:increase15m{{adapter="{ADAPTER}"}})') or 0.0


def drift_seen(url: str) -> int:
    r = httpx.get(f"{url}/v1/drift", timeout=30)
    assert r.status_code == 200, r.text
    return {d["adapter"]: d for d in r.json()["data"]}[ADAPTER]["texts_seen"]


@pytest.mark.vllm
@pytest.mark.data
@pytest.mark.slow
@pytest.mark.timeout(3000)  # two engines and ~350 texts with drift embeddings on a shared 2-core host
def test_two_replicas_feedback_anywhere_and_fleet_drift_alert(replicas, fleet_prometheus, splits):
    from phishlens.clients import PhishlensClient

    prom = fleet_prometheus
    sms = splits.sample("test", "sms_uci", per_label=SMS_PER_LABEL, seed=11)
    urls = splits.sample("test", "url_phishtank_iscx", per_label=URL_PER_LABEL, seed=11)
    assert len(sms) == 2 * SMS_PER_LABEL and len(urls) == 2 * URL_PER_LABEL
    clients = [PhishlensClient(u, timeout=300.0) for u in replicas]
    try:
        # -- warm-up: one text per replica creates the histogram series before the measured phase, so
        # increase() (which counts from a series' first scrape) sees every measured text
        warm = splits.sample("validation", "sms_uci", per_label=1, seed=11)
        for c, row in zip(clients, warm):
            c.classify([row.text], adapter=ADAPTER)
        for url in replicas:
            wait_for(lambda u=url: drift_seen(u) >= 1, 120, f"{url}'s drift monitor to see the warm-up text")
        wait_for(
            lambda: (
                len(
                    prom.query(
                        f'phishlens_drift_feature_quantile_count{{adapter="{ADAPTER}",feature="length"}}'
                    )
                )
                == 2
            ),
            30,
            "Prometheus to scrape both histograms",
        )

        # -- in-distribution SMS over both replicas: the fleet alert stays silent ---------------------------
        t0 = time.time()
        served = split_classify(clients, sms)
        per_replica = [sum(len(c) for r, _, c in served if r == k) for k in (0, 1)]
        assert sum(per_replica) == len(sms) and min(per_replica) >= len(sms) // 2 - BATCH
        for url, n in zip(replicas, per_replica):  # the drift workers run behind the requests
            wait_for(
                lambda u=url, n=n: drift_seen(u) >= n + 1, 300, f"{url}'s drift monitor to see {n} texts"
            )
        # the fleet window holds both replicas' texts
        got = wait_for(
            lambda: fleet_texts(prom) >= 150 and fleet_texts(prom),
            60,
            "the fleet recording rule to count >= 150 in-distribution texts",
        )
        assert got <= len(sms) * 1.1, got  # a sum over replicas, not a multiple of it
        time.sleep(5)  # more evaluations of the alert on the full in-distribution window
        t1 = time.time()
        psi = {
            s["metric"]["feature"]: float(s["value"][1])
            for s in prom.query(f'phishlens:drift_psi:15m{{adapter="{ADAPTER}"}}')
        }
        assert psi, "no fleet PSI recorded"
        over = prom.query_range(f'phishlens:drift_features_over:15m{{adapter="{ADAPTER}"}}', t0, t1)
        assert not over or all(float(v) < 2 for _, v in over[0]["values"]), (over, psi)
        assert not prom.query_range(f'ALERTS{{alertname="{ALERT}",adapter="{ADAPTER}"}}', t0, t1), psi
        print(
            f"\nin-distribution fleet PSI per feature over {got:.0f} texts: "
            + " ".join(f"{f}={v:.3f}" for f, v in sorted(psi.items()))
        )

        # -- feedback: a request replica A answered is labelled on replica B -------------------------------
        _, rid, rows = next(s for s in served if s[0] == 0)  # answered by replica A
        fb = clients[1].feedback(rid, [x.label for x in rows])
        assert fb.recorded == len(rows) and fb.stale == 0, fb
        wait_for(
            lambda: (
                scalar(
                    prom,
                    f'sum(phishlens_feedback_total{{adapter="{ADAPTER}",'
                    f'instance="{replicas[1].removeprefix("http://")}"}})',
                )
                == len(rows)
            ),
            30,
            "replica B's feedback counters in Prometheus",
        )
        assert not scalar(
            prom, f'sum(phishlens_feedback_total{{instance="{replicas[0].removeprefix("http://")}"}})'
        )
        again = clients[0].feedback(rid, [x.label for x in rows])  # A never saw the first labels: counts them
        assert again.recorded == len(rows)
        tampered = rid[:-2] + ("AA" if not rid.endswith("AA") else "BB")
        with pytest.raises(Exception) as e:
            clients[1].feedback(tampered, [rows[0].label])
        assert getattr(e.value, "status", None) == 404

        # -- URLs, a style the SMS specialist never saw, split the same way: the fleet alert fires ---------
        t2 = time.time()
        split_classify(clients, urls)
        firing = wait_for(
            lambda: [
                a
                for a in prom.alerts(ALERT)
                if a["labels"].get("adapter") == ADAPTER and a["state"] == "firing"
            ],
            FIRE_TIMEOUT_S,
            f"{ALERT} to fire",
        )
        alert = firing[0]
        assert alert["labels"]["severity"] == "warning" and alert["labels"]["job"] == "phishlens"
        features = alert["annotations"]["description"].split("PSI over 0.25:")[-1].split()
        psi = {
            s["metric"]["feature"]: float(s["value"][1])
            for s in prom.query(f'phishlens:drift_psi:15m{{adapter="{ADAPTER}"}}')
        }
        assert len(features) >= 2 or scalar(prom, f'phishlens:ood_share:15m{{adapter="{ADAPTER}"}}') > 0.2, (
            psi
        )
        print(
            f"fleet drift alert fired {time.time() - t2:.0f}s after the URL replay began; "
            f"PSI over 0.25: {features}; all: " + " ".join(f"{f}={v:.2f}" for f, v in sorted(psi.items()))
        )
    finally:
        for c in clients:
            c.close()
