"""deploy/kubernetes: rendered offline, validated against the Kubernetes and vendored CRD schemas, and
checked against the server's own contracts (probes, settings, the bundle lock, the alert rules)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phishlens.server.settings import Settings
from tests.kustomize import render, validate

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
TARGETS = ["overlays/cpu", "overlays/gpu", "kserve"]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {t: render(K8S / t) for t in TARGETS}


def test_generated_files_are_fresh():
    """base/prometheusrule.yaml is alerts.yml; the lock ConfigMaps hold the shipped bundles' sha256s."""
    res = subprocess.run(
        [sys.executable, str(K8S / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    rule = yaml.safe_load((K8S / "base" / "prometheusrule.yaml").read_text())
    assert rule["spec"] == yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())


@pytest.mark.parametrize("target", TARGETS)
def test_manifests_validate_against_their_schemas(rendered, target):
    docs = rendered[target]
    errors = [e for d in docs for e in validate(d)]
    assert not errors, "\n".join(errors)
    kinds = set(by_kind(docs))
    if target == "kserve":
        assert kinds == {"ConfigMap", "ServingRuntime", "InferenceService"}
    else:
        assert kinds == {
            "ServiceAccount",
            "PersistentVolumeClaim",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "ServiceMonitor",
            "PrometheusRule",
        }


@pytest.mark.parametrize(
    ("kind", "mutate", "expect"),
    [
        ("Deployment", lambda d: d["spec"].__setitem__("replics", 2), "replics"),
        ("Deployment", lambda d: d["spec"].__setitem__("replicas", "two"), "not of type 'integer'"),
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].pop("port"),
            "port",
        ),
        ("HorizontalPodAutoscaler", lambda d: d["spec"].pop("scaleTargetRef"), "scaleTargetRef"),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].__setitem__("intervall", "15s"), "intervall"),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0].pop("name"), "name"),
    ],
)
def test_validation_catches_mistakes(rendered, kind, mutate, expect):
    doc = copy.deepcopy(by_kind(rendered["overlays/cpu"])[kind])
    mutate(doc)
    errors = validate(doc)
    assert errors and any(expect in e for e in errors), errors


@pytest.mark.parametrize(
    ("kind", "mutate", "expect"),
    [
        ("ServingRuntime", lambda d: d["spec"].__setitem__("protocolVersion", ["v1"]), "protocolVersion"),
        (
            "ServingRuntime",
            lambda d: d["spec"]["containers"][0].__setitem__("ports", "8080"),
            "not of type 'array'",
        ),
        ("InferenceService", lambda d: d["spec"]["predictor"].__setitem__("minReplicas", "two"), "integer"),
        (
            "InferenceService",
            lambda d: d["spec"]["predictor"]["model"].__setitem__("storageURI", "pvc://x"),
            "storageURI",
        ),
    ],
)
def test_kserve_validation_catches_mistakes(rendered, kind, mutate, expect):
    doc = copy.deepcopy(by_kind(rendered["kserve"])[kind])
    mutate(doc)
    errors = validate(doc)
    assert errors and any(expect in e for e in errors), errors


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl not installed: the Python renderer stands alone"
)
@pytest.mark.parametrize("target", TARGETS)
def test_renderer_agrees_with_kubectl_kustomize(rendered, target):
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    ours = {(d["kind"], d["metadata"]["name"]): d for d in rendered[target]}
    assert theirs == ours


def container(doc: dict, name: str | None = None) -> dict:
    cs = doc["spec"]["template"]["spec"]["containers"]
    return cs[0] if name is None else next(c for c in cs if c["name"] == name)


def env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def declared(name: str) -> bool:
    return name.removeprefix("PHISHLENS_").lower() in Settings.model_fields


@pytest.mark.parametrize("target", ["overlays/cpu", "overlays/gpu"])
def test_deployment_contract(rendered, target):
    k = by_kind(rendered[target])
    dep, pod = k["Deployment"], k["Deployment"]["spec"]["template"]
    c = container(dep)
    labels = pod["metadata"]["labels"]
    assert (
        c["readinessProbe"]["httpGet"]["path"] == "/ready"
        and c["livenessProbe"]["httpGet"]["path"] == "/health"
    )
    port = c["ports"][0]
    assert port["name"] == "http" and env(c)["PHISHLENS_PORT"]["value"] == str(port["containerPort"])
    sc = pod["spec"]["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] != 0
    for cc in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert cc["securityContext"]["allowPrivilegeEscalation"] is False, cc["name"]
        assert cc["securityContext"]["readOnlyRootFilesystem"] is True, cc["name"]
        assert cc["resources"]["requests"], cc["name"]
    # every PHISHLENS_* variable is a declared setting (a typo would be ignored by the server)
    names = [n for n in env(c) if n.startswith("PHISHLENS_")]
    assert names and all(declared(n) for n in names), [n for n in names if not declared(n)]
    assert env(c)["PHISHLENS_FEEDBACK_SECRETS"]["valueFrom"]["secretKeyRef"]["name"] == "phishlens-secrets"
    # bundles: fetched and verified by the init container into a volume the server reads only
    init = pod["spec"]["initContainers"][0]
    assert init["command"][:4] == ["python", "-m", "phishlens.training.bundle_sync", "fetch"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert (
        mounts["adapters"]["readOnly"]
        and mounts["adapters"]["mountPath"] == env(c)["PHISHLENS_ADAPTER_ROOTS"]["value"]
    )
    lock = json.loads(k["ConfigMap"]["data"]["bundles.json"])
    assert set(env(c)["PHISHLENS_ADAPTERS"]["value"].split(",")) == set(lock["bundles"])
    # selectors line up: Service, PDB and HPA find these pods; the ServiceMonitor finds the Service's port
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert k["Service"]["spec"]["selector"].items() <= labels.items()
    assert k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert k["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    sm = k["ServiceMonitor"]["spec"]
    assert sm["selector"]["matchLabels"].items() <= k["Service"]["metadata"]["labels"].items()
    assert sm["endpoints"][0]["port"] in {p["name"] for p in k["Service"]["spec"]["ports"]}
    assert (
        k["Service"]["metadata"]["name"] == "phishlens"
    )  # the Operator's `job` label the alert rules select
    gpu = c["resources"]["limits"].get("nvidia.com/gpu")
    assert (gpu == "1") == (target == "overlays/gpu")


def test_kserve_contract(rendered):
    k = by_kind(rendered["kserve"])
    rt, isvc = k["ServingRuntime"]["spec"], k["InferenceService"]["spec"]["predictor"]
    fmt = isvc["model"]["modelFormat"]
    assert {"name": fmt["name"], "version": fmt["version"]} in [
        {"name": f["name"], "version": f["version"]} for f in rt["supportedModelFormats"]
    ]
    assert isvc["model"]["runtime"] == k["ServingRuntime"]["metadata"]["name"]
    assert rt["protocolVersions"] == ["v1"] and isvc["model"]["protocolVersion"] == "v1"
    c = rt["containers"][0]
    assert c["name"] == "kserve-container" and "bundle_sync verify /mnt/models" in c["args"][0]
    assert "--port 8080" in c["args"][0] and c["ports"][0]["containerPort"] == 8080
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    names = [n for n in list(env(c)) + list(env(isvc["model"])) if n.startswith("PHISHLENS_")]
    assert all(declared(n) for n in names), names
    lock = json.loads(k["ConfigMap"]["data"]["bundles.json"])
    assert set(env(isvc["model"])["PHISHLENS_ADAPTERS"]["value"].split(",")) == set(lock["bundles"])


def test_the_init_container_command_verifies_the_shipped_bundles(rendered, tmp_path):
    """The Deployment's init container, run here with its paths mapped: the shipped lock matches adapters/."""
    k = by_kind(rendered["overlays/cpu"])
    lock = tmp_path / "bundles.json"
    lock.write_text(k["ConfigMap"]["data"]["bundles.json"])
    cmd = k["Deployment"]["spec"]["template"]["spec"]["initContainers"][0]["command"]
    mapping = {
        "/etc/phishlens/bundles.json": str(lock),
        "/bundle-store": str(REPO / "adapters"),
        "/adapters": str(tmp_path / "adapters"),
    }
    argv = [sys.executable if a == "python" else mapping.get(a, a) for a in cmd]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == sorted(
        json.loads(lock.read_text())["bundles"]
    )
