"""`phishlens diagnose`: evidence on planted data (label noise, shortcut verdicts) and the full runner on
tiny bundles over the real corpora (skipped without them)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from phishlens.explain.diagnose import DiagnosedModel, diagnose, noise_audit, verdict, write_report
from tests.models import planted, single_thread


@pytest.fixture(scope="module")
def zebra_model(tiny_bundles):
    """The zebra-phish bundle as a DiagnosedModel (HF path, same weights as served)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.explain.hidden import collect_hidden
    from phishlens.explain.logit_lens import LogitLens
    from phishlens.explain.probes import ProbeSet
    from phishlens.training.contract.prompt import PromptEncoder

    _, b, _ = tiny_bundles
    m = b.manifest
    tok = AutoTokenizer.from_pretrained(m.base_model.ref)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(m.base_model.ref), str(b.path)
    ).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens)
    lens = LogitLens.of(model, m.label_token_ids)

    def hidden(texts):
        return collect_hidden(model, [enc.encode(t).ids for t in texts], 0)

    def score(texts):
        return lens.probabilities(hidden(texts).last, m.calibration.temperature)[:, -1]

    return DiagnosedModel(
        b.name,
        ["sms_uci"],
        m.calibration.threshold,
        hidden,
        lambda s: lens.probabilities(s, m.calibration.temperature),
        score,
        tok,
        ProbeSet.load(b.path),
        list(m.lora.layers or []),
    )


def _rows():
    """Planted rows over two styles and sources; 4 rows of sms_b carry the wrong label."""
    rows = [replace(r, source="sms_a") for r in planted(24, seed=5)]
    rows += [replace(r, source="sms_b") for r in planted(24, seed=6)]
    rows += [replace(r, style="email", source="email_c") for r in planted(24, seed=7)]
    flipped = [i for i, r in enumerate(rows) if r.source == "sms_b"][:4]
    for i in flipped:
        r = rows[i]
        rows[i] = replace(r, label="legitimate" if r.label == "phishing" else "phishing")
    return rows, flipped


def test_diagnosis_finds_planted_label_noise_and_writes_report(zebra_model, tmp_path):
    rows, flipped = _rows()
    matrix = {"rows": [{"name": "zebra-phish", "cells": {"email": {"value": 0.4}, "sms": {"value": 0.95}}}]}
    with single_thread():
        d = diagnose([zebra_model], rows, matrix, shap_per_style=1, shap_evals=16)
    ev = d.models[0]
    assert d.layers == [f"layer.{i}.resid_post" for i in range(4)]
    assert set(ev.by_style) == {"sms", "email"} and ev.by_style["sms"]["n"] == 48
    assert ev.by_style["email"]["accuracy"] >= 0.9  # the zebra rule holds whatever the style
    # every planted flip is confidently contradicted, and almost nothing else
    assert set(flipped) <= set(ev.confident_errors) and len(ev.confident_errors) <= len(flipped) + 3
    assert d.noise["per_source"]["sms_b"]["flagged"] >= 4 and d.noise["per_source"]["sms_a"]["flagged"] <= 2
    # probes fitted on the sample: the label is decodable at the adapted layers
    assert max(ev.probe_accuracy["label"]["accuracy"][2:]) >= 0.85
    assert ev.label_probe_transfer is not None and len(ev.label_probe_transfer) == 4
    edits = {"remove_url", "change_sender", "strip_html", "swap_brand", "flatten_surface"}
    assert {p["edit"] for p in ev.pairs} == edits
    assert "sms" in ev.shap and ev.shap["sms"]["n_texts"] == 1
    modes = [f.mode for f in verdict(d)]
    assert any(m.startswith("label noise") for m in modes)
    report = write_report(d, tmp_path)
    text = report.read_text()
    for section in ("## Verdict", "## Where the decision forms", "## Minimal pairs", "## Label-noise audit"):
        assert section in text
    for fig in ("probes.png", "logit_lens.png", "flips.png"):
        assert (tmp_path / fig).stat().st_size > 1000
    data = json.loads((tmp_path / "diagnosis.json").read_text())
    assert data["findings"] and data["models"][0]["name"] == "zebra-phish"
    from phishlens.explain.diagnose import Diagnosis, to_markdown

    again = Diagnosis.from_dict(data, matrix)  # re-rendering from the JSON gives the same report
    assert (
        to_markdown(again, {"probes": "probes.png", "lens": "logit_lens.png", "flips": "flips.png"}) == text
    )


def test_noise_audit_needs_every_model():
    class R:
        def __init__(self, y, source):
            self.y, self.source, self.text, self.style = y, source, "t", "sms"

    rows = [R(1, "a"), R(0, "a"), R(1, "b")]

    class E:
        def __init__(self, name, errs):
            self.name, self.confident_errors = name, errs

    out = noise_audit(
        rows,
        [E("m1", [0, 2]), E("m2", [0])],
        {"m1": np.array([0.01, 0.1, 0.02]), "m2": np.array([0.02, 0.2, 0.6])},
    )
    assert (
        out["n_flagged"] == 1
        and out["per_source"]["a"]["flagged"] == 1
        and out["per_source"]["b"]["flagged"] == 0
    )
    assert out["per_source"]["b"]["by_model"] == {"m1": 1, "m2": 0}


@pytest.mark.data
def test_runner_on_real_corpora_with_tiny_bundles(tiny_bundles, data_root, tmp_path):
    """The full `phishlens diagnose` path: shared frozen blocks, real rows of every source, report files."""
    from phishlens.training.commands.diagnose import run_diagnosis

    root, phish, legit = tiny_bundles
    with single_thread():
        report = run_diagnosis(
            [phish.path, legit.path],
            tmp_path,
            data_root=data_root,
            per_label=1,
            shap_per_style=0,
            matrix_path=None,
        )
    data = json.loads((tmp_path / "diagnosis.json").read_text())
    assert [m["name"] for m in data["models"]] == ["zebra-phish", "zebra-legit"]
    assert {"email", "sms", "url"} <= set(data["models"][0]["by_style"])
    assert "## Verdict" in report.read_text()


@pytest.mark.data
def test_runner_diagnoses_adapters_with_different_prompts(tiny_bundles, data_root, tmp_path):
    """Adapters whose templates differ (one names the style) are diagnosed side by side, each through its own
    prompt: the frozen-layer states are shared per prompt, never across prompts."""
    import shutil

    from phishlens.training.commands.diagnose import run_diagnosis

    _, _, legit = tiny_bundles
    styled = tmp_path / "bundles" / "zebra-styled"
    shutil.copytree(legit.path, styled)
    manifest = json.loads((styled / "phishlens.json").read_text())
    manifest["name"] = "zebra-styled"
    manifest["prompt"]["template"] = "Is this {style} phishing or legit?\n{text}\nAnswer:"
    (styled / "phishlens.json").write_text(json.dumps(manifest))
    with single_thread():
        run_diagnosis(
            [legit.path, styled],
            tmp_path / "out",
            data_root=data_root,
            per_label=1,
            shap_per_style=0,
            matrix_path=None,
        )
    plain, named = json.loads((tmp_path / "out" / "diagnosis.json").read_text())["models"]
    assert (plain["name"], named["name"]) == ("zebra-legit", "zebra-styled")
    # each adapter's diagnostic forward equals its served score (states resumed from its own prompt's cache)
    assert plain["served_check_max_diff"] < 1e-4 and named["served_check_max_diff"] < 1e-4
    # same weights, other prompt: other probabilities
    assert any(
        plain["by_style"][s]["mean_p_legit_rows"] != named["by_style"][s]["mean_p_legit_rows"]
        for s in ("email", "sms", "url")
    )
