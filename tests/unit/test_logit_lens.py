"""Logit lens: the last layer's reading equals the served probability (HF scoring path), and the
probes built at bundle time are stored, indexed in the manifest and find the planted label."""

from __future__ import annotations

import numpy as np
import pytest

from phishlens.explain.hidden import collect_hidden
from phishlens.explain.logit_lens import LogitLens, decision_layer
from tests.models import planted, single_thread


@pytest.fixture(scope="module")
def served(tiny_bundles):
    """(bundle, tokenizer, peft model, encoder) loaded the way the server's HF backend loads them."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.training.contract.prompt import PromptEncoder

    _, bundle, _ = tiny_bundles
    m = bundle.manifest
    tok = AutoTokenizer.from_pretrained(m.base_model.ref)
    base = AutoModelForCausalLM.from_pretrained(m.base_model.ref).eval()
    model = PeftModel.from_pretrained(base, str(bundle.path), adapter_name="a1", is_trainable=False).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
    return bundle, tok, model, enc


def test_last_layer_equals_served_probability(served):
    from phishlens.server.backends.hf_backend import HFScorer
    from phishlens.server.services.classify import calibrate

    bundle, tok, model, enc = served
    m = bundle.manifest
    texts = [r.text for r in planted(12, seed=7)]
    prompts = [enc.encode(t).ids for t in texts]
    with single_thread():
        served_lp = HFScorer(model, 0).label_logprobs(
            prompts, [m.label_token_ids] * len(prompts), ["a1"] * len(prompts)
        )
        hidden = collect_hidden(model, prompts, pad_id=0)
    p_served = np.array([calibrate(lp, m.calibration)[0] for lp in served_lp])
    curve = LogitLens.of(model, m.label_token_ids).probabilities(hidden.last, m.calibration.temperature)
    assert curve.shape == (12, 4)
    assert np.allclose(curve[:, -1], p_served, atol=1e-5)
    # the adapter learned the rule, so its verdicts separate the planted classes at the last layer
    y = np.array([r.y for r in planted(12, seed=7)])
    assert ((curve[:, -1] >= m.calibration.threshold).astype(int) == y).mean() >= 0.9


def test_decision_layer():
    assert decision_layer([0.5, 0.52, 0.9, 0.95]) == 2
    assert decision_layer([0.9, 0.1, 0.2, 0.05]) == 1
    assert decision_layer([0.5, 0.55]) is None
    assert decision_layer([]) is None


def test_bundle_carries_probes(tiny_bundles):
    from phishlens.explain.probes import ProbeSet

    _, bundle, _ = tiny_bundles
    extras = bundle.manifest.extras
    assert extras.get("probes") == "probes.safetensors" and extras.get("probes_index") == "probes.json"
    ps = ProbeSet.load(bundle.path)
    assert ps.layers == [f"layer.{i}.resid_post" for i in range(4)]
    acc = ps.probes["label"].accuracy
    assert max(acc[2:]) >= 0.9, acc  # LoRA lives in the top two layers: the label is readable there
    assert "style" in ps.skipped and "source" in ps.skipped  # one style, one source in planted data


def test_augment_command_refuses_cleanly(tiny_bundles, tmp_path):
    """`phishlens augment`: an unknown group and a bundle whose mix cannot be rebuilt end with exit 2, no
    traceback."""
    import shutil

    from typer.testing import CliRunner

    from phishlens.training.cli import app

    _, bundle, _ = tiny_bundles
    copy = tmp_path / "copy"
    shutil.copytree(bundle.path, copy)
    out = CliRunner().invoke(app, ["augment", str(copy), "--only", "bogus"])
    assert out.exit_code == 2 and "unknown group" in out.output
    out = CliRunner().invoke(app, ["augment", str(copy), "--only", "probes"])  # mix "planted" is test-only
    assert out.exit_code == 2 and "error:" in out.output, out.output
