"""Acceptance: a real Prometheus, loaded with the shipped alert rules, scraping a real phishlens server.

The server is `python -m phishlens.server.main` in its own process (real uvicorn on a port, the real vLLM
engine, SmolLM2 with the `specialist-sms` bundle and its reference profile), so its engine never shares a
process with the session's other e2e server. Prometheus is Debian's binary on a free port with
scrape/evaluation every second and `rule_files` = deploy/prometheus/alerts.yml, unchanged.

Replaying real SMS test rows (the specialist's own style) at 2 % phishing keeps `phishlens_drift_alert` at 0
on a full window; a phishing wave (the same source at 30 %) makes PhishlensPrevalenceShift fire while no drift
alert is ever pending (label shift is not drift); replaying real URL rows (a style the specialist never saw)
makes PhishlensDriftDetected fire (`for: 1m`). Feedback with the rows' true labels shows up in Prometheus as
phishlens_feedback_total / live precision, and the label-free CBPE estimates (adjusted to the estimated
prevalence) agree with it.

Skips with the reason when prometheus, vLLM, the corpora or the bundle's reference profile are missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import _ok, _wait, free_port, require_vllm, smollm2_server, stop

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "phishlens.json"
ADAPTER = "specialist-sms"
WINDOW = 100  # a window size the reference thresholds are calibrated for
PHASE = 112  # texts per phase: more than a window, and a whole number of batches
LOW, WAVE = 2, 34  # phishing texts per phase: 2 % then 30 %
HOLD_S = 45.0  # seconds of the low prevalence Prometheus records before the wave (the alert's baseline)
BATCH = 16  # texts per request; also the monitor's evaluation period, so it evaluates after every request
SERVER_START_S = 600.0
FIRE_TIMEOUT_S = 180.0  # window fills, 1 m `for:`, scrape and evaluation lag


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("prometheus not found (Debian's `prometheus` package: apt-get install -y prometheus)")
    return path


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (
            f"{path} {params}: {r.status_code} {body}"
        )
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step="1s")["result"]

    def alerts(self, name: str) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]


def start_prometheus(tmp: Path, targets: list[str]) -> Prometheus:
    binary = prometheus_binary()
    port = free_port()
    config = tmp / "prometheus.yml"
    scrape = (
        "\n".join(
            [
                "scrape_configs:",
                "  - job_name: phishlens",
                "    static_configs:",
                f"      - targets: {targets!r}".replace("'", '"'),
            ]
        )
        if targets
        else "scrape_configs: []"
    )
    config.write_text(
        f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {RULES}\n{scrape}\n"
    )
    log = open(tmp / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc)
    _wait(lambda: _ok(f"{prom.url}/-/ready"), 60, proc, tmp / "prometheus.log", "prometheus")
    return prom


# ---- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replay(splits) -> dict[str, list[Any]]:
    """Real test rows: SMS (the specialist's style) at 2 % and at 30 % phishing, and URLs (never seen)."""
    import random

    rows = splits.sample("test", "sms_uci", per_label=2 * PHASE, seed=7)
    spam = [r for r in rows if r.label == "phishing"]
    ham = [r for r in rows if r.label != "phishing"]
    low = spam[:LOW] + ham[: PHASE - LOW]
    wave = spam[LOW : LOW + WAVE] + ham[PHASE - LOW : 2 * PHASE - LOW - WAVE]
    for i, phase in enumerate((low, wave)):
        random.Random(i).shuffle(phase)
    return {
        "low": low,
        "wave": wave,
        "url": splits.sample("test", "url_phishtank_iscx", per_label=PHASE // 2, seed=7),
    }


@pytest.fixture(scope="module")
def server(smollm2_base, tmp_path_factory) -> str:
    """`python -m phishlens.server.main` on a free port: specialist-sms, a 100-text drift window."""
    require_vllm()
    from phishlens.training.contract.bundle import load_bundle

    bundle = load_bundle(REPO / "adapters" / ADAPTER)
    if "reference" not in bundle.manifest.extras:
        pytest.skip(
            f"adapters/{ADAPTER} has no drift reference profile "
            f"(phishlens augment adapters/{ADAPTER} --only reference)"
        )
    tmp = tmp_path_factory.mktemp("phishlens-server")
    with smollm2_server(
        tmp,
        SERVER_START_S,
        PHISHLENS_ADAPTERS=ADAPTER,
        PHISHLENS_DEFAULT_ADAPTER=ADAPTER,
        PHISHLENS_DRIFT_ENABLED="true",
        PHISHLENS_DRIFT_WINDOW=str(WINDOW),
        PHISHLENS_DRIFT_EVAL_EVERY=str(BATCH),
        PHISHLENS_FEEDBACK_STATE_DIR=str(tmp / "feedback"),
    ) as url:
        yield url


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory) -> Prometheus:
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"), [server.removeprefix("http://")])
    try:
        deadline = time.monotonic() + 30
        while not prom.query('up{job="phishlens"} == 1'):
            assert time.monotonic() < deadline, "Prometheus never scraped the phishlens server"
            time.sleep(0.5)
        yield prom
    finally:
        stop(prom.proc)


# ---- helpers --------------------------------------------------------------------------------------------
def classify_all(client, rows, batch: int = BATCH) -> list[tuple[str, list, Any]]:
    """(response id, rows) per request, through the adapter, as live traffic."""
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        resp = client.classify([r.text for r in chunk], adapter=ADAPTER)
        out.append((resp.id, chunk, resp))
    return out


def drift_report(server: str) -> dict:
    r = httpx.get(f"{server}/v1/drift", timeout=30)
    assert r.status_code == 200, r.text
    return {d["adapter"]: d for d in r.json()["data"]}[ADAPTER]


def wait_evaluated(server: str, texts_seen: int, timeout: float) -> dict:
    """The drift report once the monitor's worker (behind the requests) evaluated `texts_seen` texts."""
    deadline = time.monotonic() + timeout
    while True:
        d = drift_report(server)
        if d["texts_seen"] >= texts_seen:
            return d
        assert time.monotonic() < deadline, (
            f"the drift monitor evaluated {d['texts_seen']} of {texts_seen} texts after {timeout:g}s "
            f"(status {d['status']}, window {d['window_texts']})"
        )
        time.sleep(1.0)


def scalar(prom: Prometheus, expr: str) -> float | None:
    res = prom.query(expr)
    return float(res[0]["value"][1]) if res else None


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what} (last: {got!r})"
        time.sleep(1.0)


# ---- tests ----------------------------------------------------------------------------------------------
def label_all(client, served) -> dict[str, int]:
    """Send every served text's true label; the outcome counts they make."""
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for rid, rows, resp in served:
        fb = client.feedback(rid, [r.label for r in rows])
        assert fb.recorded == len(rows)
        for r, res in zip(rows, resp.data):
            counts[
                ("t" if (res.label == "phishing") == (r.label == "phishing") else "f")
                + ("p" if res.label == "phishing" else "n")
            ] += 1
    return counts


@pytest.mark.vllm
@pytest.mark.data
@pytest.mark.slow
def test_prevalence_wave_and_unseen_style_in_prometheus(server, prometheus, replay):
    from phishlens.clients import PhishlensClient

    sel = f'adapter="{ADAPTER}"'
    drift_alerts = f'ALERTS{{alertname="PhishlensDriftDetected",{sel}}}'
    with PhishlensClient(server, timeout=300.0) as client:
        # -- phase 1: in-distribution SMS at 2 % phishing (the balanced reference is reweighted to it) -----
        t0 = time.time()
        served = classify_all(client, replay["low"])
        # the monitor's worker runs behind the requests: wait until it evaluated every replayed text
        report = wait_evaluated(server, PHASE, 120)
        assert report["window_texts"] == WINDOW and report["status"] == "ok" and not report["alert"], report
        assert report["prevalence"]["estimate"] < 0.1, report["prevalence"]
        wait_for(
            lambda: scalar(prometheus, f"phishlens_drift_window_texts{{{sel}}}") == WINDOW,
            30,
            "Prometheus to scrape the full window",
        )
        time.sleep(HOLD_S)  # Prometheus records the usual (low) prevalence: the prevalence alert's baseline

        # -- phase 2: a phishing wave, same source at 30 %: the prevalence alert, never the drift alert ---
        served += classify_all(client, replay["wave"])
        report = wait_evaluated(server, 2 * PHASE, 120)
        assert report["status"] == "ok" and not report["alert"], report
        assert report["prevalence"]["low"] > 0.15, report["prevalence"]
        firing = wait_for(
            lambda: [
                a
                for a in prometheus.alerts("PhishlensPrevalenceShift")
                if a["labels"].get("adapter") == ADAPTER and a["state"] == "firing"
            ],
            FIRE_TIMEOUT_S,
            "PhishlensPrevalenceShift to fire",
        )
        assert "runbook" in firing[0]["annotations"] and "/v1/drift" in firing[0]["annotations"]["runbook"]
        t1 = time.time()
        flags = prometheus.query_range(f"phishlens_drift_alert{{{sel}}}", t0, t1)
        assert flags and all(float(v) == 0 for _, v in flags[0]["values"]), flags
        assert not prometheus.query_range(drift_alerts, t0, t1)  # never even pending
        print(f"\nprevalence alert fired {t1 - t0:.0f}s into the run; estimate {report['prevalence']}")

        # -- feedback on both phases: true labels reach Prometheus; CBPE (prior-adjusted) agrees ----------
        counts = label_all(client, served)
        n_labels = sum(counts.values())
        wait_for(
            lambda: scalar(prometheus, f"sum(phishlens_feedback_total{{{sel}}})") == n_labels,
            30,
            "feedback counters scraped",
        )
        for outcome, n in counts.items():
            got = scalar(prometheus, f'phishlens_feedback_total{{{sel},outcome="{outcome}"}}')
            assert (got or 0.0) == n, (outcome, got, n)
        assert scalar(prometheus, f"phishlens_expected_window_texts{{{sel}}}") == 2 * PHASE
        precision = counts["tp"] / max(counts["tp"] + counts["fp"], 1)
        recall = counts["tp"] / max(counts["tp"] + counts["fn"], 1)
        wait_for(
            lambda: scalar(prometheus, f"phishlens_live_precision{{{sel}}}") is not None,
            30,
            "live precision scraped",
        )
        assert abs(scalar(prometheus, f"phishlens_live_precision{{{sel}}}") - precision) < 1e-9
        expected_p = scalar(prometheus, f"phishlens_expected_precision{{{sel}}}")
        expected_r = scalar(prometheus, f"phishlens_expected_recall{{{sel}}}")
        assert abs(expected_p - precision) < 0.1 and abs(expected_r - recall) < 0.15, (
            expected_p,
            precision,
            expected_r,
            recall,
            counts,
        )

        # -- phase 3: URLs, a style the SMS specialist never saw -----------------------------------------
        t2 = time.time()
        classify_all(client, replay["url"])
        firing = wait_for(
            lambda: [
                a
                for a in prometheus.alerts("PhishlensDriftDetected")
                if a["labels"].get("adapter") == ADAPTER and a["state"] == "firing"
            ],
            FIRE_TIMEOUT_S,
            "PhishlensDriftDetected to fire",
        )
        alert = firing[0]
        assert alert["labels"]["severity"] == "warning" and alert["labels"]["job"] == "phishlens"
        assert "runbook" in alert["annotations"] and "/v1/drift" in alert["annotations"]["runbook"]
        over = alert["annotations"]["description"].split("Features over threshold now:")[-1].split()
        report = drift_report(server)
        assert report["status"] == "drift" and report["alert"], report
        assert set(over) <= {f["feature"] for f in report["features"]}
        print(
            f"drift alert fired {time.time() - t2:.0f}s after the URL replay began; "
            f"over threshold: {over}; most shifted: {report['most_shifted']}"
        )


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Every Grafana panel query (variables filled in) parses and runs on a real Prometheus."""
    import json

    prom = start_prometheus(tmp_path, [])
    try:
        dash = json.loads(DASHBOARD.read_text())
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        assert len(exprs) >= 15
        for expr in exprs:
            q = expr.replace("$adapter", ".*").replace("$feature", ".*").replace("$__rate_interval", "1m")
            prom.query(q)  # asserts status "success"
    finally:
        stop(prom.proc)
