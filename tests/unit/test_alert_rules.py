"""The shipped Prometheus alert rules: promtool validates them and runs their unit tests.

Needs `promtool` (Debian/Ubuntu: `apt-get install prometheus`; `.ci/run` installs it); skipped with that
reason when it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "alerts_test.yml"
EXPECTED_ALERTS = {
    "PhishlensDriftDetected",
    "PhishlensOODShareHigh",
    "PhishlensExpectedPrecisionDrop",
    "PhishlensExpectedRecallDrop",
    "PhishlensLivePrecisionDrop",
    "PhishlensLiveRecallDrop",
    "PhishlensDown",
    "PhishlensNotReady",
    "PhishlensErrorRateHigh",
    "PhishlensLatencyHigh",
    "PhishlensQueueSaturated",
    "PhishlensFleetDriftDetected",
    "PhishlensPrevalenceShift",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found (it comes with Debian's `prometheus`: apt-get install -y prometheus)")
    return path


def rules() -> list[dict]:
    """Alerting rules (recording rules, e.g. the fleet aggregation, are in `recording_rules()`)."""
    return [r for r in all_rules() if "alert" in r]


def recording_rules() -> list[dict]:
    return [r for r in all_rules() if "record" in r]


def all_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_every_alert_is_documented_and_tested():
    alerts = {r["alert"]: r for r in rules()}
    assert set(alerts) == EXPECTED_ALERTS
    for name, r in alerts.items():
        ann = r.get("annotations", {})
        assert {"summary", "description", "runbook"} <= set(ann), name
        assert r["labels"]["severity"] in {"warning", "critical"}, name
        assert "\n" not in ann["runbook"].strip(), f"{name}: the runbook is one line"
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == EXPECTED_ALERTS, f"alerts without a promtool test: {EXPECTED_ALERTS - tested}"


def test_drift_alert_is_short_enough_to_test_end_to_end():
    (drift,) = [r for r in rules() if r["alert"] == "PhishlensDriftDetected"]
    assert drift["for"] == "1m"


def test_prevalence_alert_is_short_enough_to_test_end_to_end():
    (rule,) = [r for r in rules() if r["alert"] == "PhishlensPrevalenceShift"]
    assert rule["for"] == "1m" and "phishlens_drift_prevalence_low" in rule["expr"]


def test_promtool_check_rules():
    out = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(all_rules())} rules found" in out.stdout + out.stderr


def test_promtool_test_rules():
    out = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_fleet_drift_aggregates_over_replicas_before_any_ratio():
    """Every fleet recording rule that reads raw series sums them without `instance`, so the values do not
    depend on how many replicas share the traffic (the promtool cases split the same traffic 1 and 3 ways)."""
    fleet = [r for r in recording_rules() if r["record"].startswith(("phishlens:drift_", "phishlens:ood_"))]
    assert len(fleet) >= 6
    raw = [r for r in fleet if "phishlens_" in r["expr"]]
    assert raw and all(
        r["expr"].lstrip().startswith("sum by (job, adapter") or "sum by (job, adapter" in r["expr"]
        for r in raw
    )
    assert not any("instance" in r["expr"] for r in fleet)
