"""`phishlens soup`: the mean of LoRA fits as one adapter. The weight algebra is exact, and on real tiny fits
(same rows and initialisation, other fit seeds) the soup is a calibrated bundle that still reads the rule;
fits of different recipes are refused with the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.models import planted, single_thread, train_tiny_bundle


def _delta(state: dict[str, torch.Tensor], module: str, scaling: float) -> torch.Tensor:
    return scaling * state[module + ".lora_B.weight"] @ state[module + ".lora_A.weight"]


def test_soup_delta_is_the_mean_of_the_deltas():
    from phishlens.training.model.soup import soup_lora

    gen = torch.Generator().manual_seed(0)
    mods = ["m.layers.2.q_proj", "m.layers.3.down_proj"]
    parts = []
    for r, alpha in ((8, 16.0), (4, 4.0), (8, 32.0)):  # ranks and scalings may differ
        state = {}
        for mod in mods:
            state[mod + ".lora_A.weight"] = torch.randn(r, 24, generator=gen)
            state[mod + ".lora_B.weight"] = torch.randn(40, r, generator=gen)
        parts.append((state, alpha / r))
    soup = soup_lora(parts)
    for mod in mods:
        assert soup[mod + ".lora_A.weight"].shape == (20, 24) and soup[mod + ".lora_B.weight"].shape == (
            40,
            20,
        )
        want = sum(_delta(s, mod, sc) for s, sc in parts) / len(parts)
        torch.testing.assert_close(_delta(soup, mod, 1.0), want, rtol=1e-5, atol=1e-5)


def test_soup_refuses_mismatched_or_foreign_weights():
    from phishlens.training.model.soup import soup_lora

    a = {"x.lora_A.weight": torch.zeros(2, 3), "x.lora_B.weight": torch.zeros(3, 2)}
    with pytest.raises(ValueError, match="at least two"):
        soup_lora([(a, 1.0)])
    other = {"y.lora_A.weight": torch.zeros(2, 3), "y.lora_B.weight": torch.zeros(3, 2)}
    with pytest.raises(ValueError, match="other modules"):
        soup_lora([(a, 1.0), (other, 1.0)])
    extra = a | {"x.lora_magnitude_vector": torch.zeros(3)}
    with pytest.raises(ValueError, match="only plain LoRA"):
        soup_lora([(extra, 1.0), (extra, 1.0)])


@pytest.fixture(scope="module")
def fits(tmp_path_factory, tiny_llama):
    """Two fits of one tiny recipe (fit seeds 101, 202) and one on other rows (a different recipe)."""
    root = tmp_path_factory.mktemp("soup-fits")
    with single_thread():
        a, b = (
            train_tiny_bundle(tiny_llama.path, root / f"fit{s}", f"fit{s}", seed=0, fit_seed=s)
            for s in (101, 202)
        )
        other = train_tiny_bundle(tiny_llama.path, root / "other", "other", seed=1)
    return a, b, other


def test_soup_of_two_fits_is_a_calibrated_bundle_that_reads_the_rule(fits, tmp_path):
    from safetensors.torch import load_file

    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.commands.soup import soup_bundles
    from phishlens.training.contract.bundle import load_bundle

    a, b, _ = fits
    val, test = planted(80, True, seed=100), {"sms_uci": planted(80, True, seed=200)}
    with single_thread():
        soup = soup_bundles(
            [a.path, b.path],
            tmp_path / "soup",
            "soup",
            ["tests"],
            validation=val,
            eval_sets=test,
            seen_sources=["sms_uci"],
        )
    m = soup.manifest
    assert soup.name == "soup" and m.lora.r == 16 and m.lora.alpha == 16.0
    assert json.loads((soup.path / "adapter_config.json").read_text())["r"] == 16
    assert [f["fit_seed"] for f in m.metrics["soup"]["of"]] == [101, 202]
    assert [f["sha256"] for f in m.metrics["soup"]["of"]] == [a.sha256, b.sha256]
    # the stored weights are the mean of the fits' deltas, module by module
    sa, sb, ss = (load_file(str(x.path / "adapter_model.safetensors")) for x in (a, b, soup))
    for mod in {k.rsplit(".lora_", 1)[0] for k in ss}:
        want = (_delta(sa, mod, a.manifest.lora.alpha / 8) + _delta(sb, mod, b.manifest.lora.alpha / 8)) / 2
        torch.testing.assert_close(_delta(ss, mod, 1.0), want, rtol=1e-4, atol=1e-6)
    # calibrated afresh on the validation rows, metrics measured, golden rows and artefacts rebuilt
    assert m.calibration.uncertain_low <= m.calibration.threshold <= m.calibration.uncertain_high
    assert m.metrics["test"]["sms"]["f1"] >= 0.9
    assert m.golden and set(m.extras) == set(a.manifest.extras)
    with single_thread():
        for _, scorer in adapter_scorers([load_bundle(soup.path)]):
            p = scorer([r.text for r in test["sms_uci"]])
    y = np.array([r.y for r in test["sms_uci"]])
    assert ((p >= m.calibration.threshold) == (y == 1)).mean() >= 0.9  # it still reads the planted rule


def test_soup_refuses_fits_of_different_recipes(fits, tmp_path):
    from phishlens.clients.cli import app

    a, _, other = fits
    r = CliRunner(env={"COLUMNS": "400"}).invoke(
        app, ["soup", str(a.path), str(other.path), "--out", str(tmp_path / "s"), "--name", "s"]
    )
    assert r.exit_code == 2, r.output
    assert "training_data differs" in r.output and "not fits of one recipe" in r.output
    assert not (tmp_path / "s").exists()
