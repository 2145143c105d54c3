"""`phishlens calibrate` on a real trained tiny bundle: the threshold moves to the F1-best cut under the FPR
cap on the validation rows, the weights and temperature stay, the metrics follow the new threshold."""

from __future__ import annotations

import hashlib
import random
import shutil

import numpy as np
import pytest

from tests.models import planted, single_thread


def _noisy(n: int, seed: int):
    """Planted rows with a quarter of the labels flipped: no cut separates them, so the cap binds."""
    from phishlens.training.data.records import Record

    rng = random.Random(seed)
    out = []
    for r in planted(n, True, seed=seed):
        if rng.random() < 0.25:
            lab = "legitimate" if r.label == "phishing" else "phishing"
            r = Record(r.text, lab, r.style, r.source, lab, r.uid)
        out.append(r)
    return out


def test_calibrate_caps_validation_fpr_and_keeps_weights(tiny_bundles, tmp_path):
    from phishlens.training.commands.calibrate import calibrate_bundle
    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.contract.bundle import load_bundle, write_manifest
    from phishlens.training.model.calibration import choose_threshold

    _, phish, _ = tiny_bundles
    path = tmp_path / "b"
    shutil.copytree(phish.path, path)
    weights = hashlib.sha256((path / "adapter_model.safetensors").read_bytes()).hexdigest()
    val, test = _noisy(160, 7), {"sms_uci": planted(60, True, seed=8)}
    with single_thread():
        # the tiny adapter is saturated (P ~ 0 or 1); a softer temperature spreads the scores inside
        # [0.02, 0.98], where a threshold may lie, so an FPR cap can be met by moving the cut
        for _, scorer in adapter_scorers([load_bundle(path)]):
            margins = scorer.margins([r.text for r in val])
        soft = load_bundle(path).manifest
        soft = soft.model_copy(
            update={
                "calibration": soft.calibration.model_copy(
                    update={"temperature": float(abs(margins).max() / 3)}
                )
            }
        )
        write_manifest(path, soft)
        before = load_bundle(path).manifest
        for b in (0.1, None):  # capped, then back to the F1-best rule
            after = calibrate_bundle(path, b, validation=val, eval_sets=test, seen_sources=["sms_uci"])
            m = after.manifest
            assert m.calibration.max_fpr == b and m.metrics["calibrated"]["max_fpr"] == b
            assert m.calibration.temperature == before.calibration.temperature
            assert m.calibration.uncertain_low <= m.calibration.threshold <= m.calibration.uncertain_high
            for _, scorer in adapter_scorers([after]):
                p = scorer([r.text for r in val])
            y = np.array([r.y for r in val])
            fp_rate = float(((p >= m.calibration.threshold) & (y == 0)).sum() / (y == 0).sum())
            if b is not None:
                capped = m.calibration.threshold
                assert fp_rate <= 0.1
            else:
                assert m.calibration.threshold == pytest.approx(choose_threshold(p, y), abs=1e-5)
                assert fp_rate > 0.1 and capped > m.calibration.threshold  # the cap bound: it moved the cut
            # the in-distribution metrics are re-measured at the new threshold
            assert m.metrics["by_source"]["sms_uci"]["threshold"] == m.calibration.threshold
    assert hashlib.sha256((path / "adapter_model.safetensors").read_bytes()).hexdigest() == weights
    assert m.metrics["train"] == before.metrics["train"] | {"config": m.metrics["train"]["config"]}


def test_calibrate_refuses_a_cap_no_threshold_can_meet(tiny_bundles, tmp_path):
    """Saturated scores: legitimate rows at P ~ 1 keep any cut <= 0.98 above the cap: a clear error, and
    the manifest is left as it was."""
    from phishlens.training.commands.calibrate import calibrate_bundle

    _, phish, _ = tiny_bundles
    path = tmp_path / "b"
    shutil.copytree(phish.path, path)
    manifest = (path / "phishlens.json").read_bytes()
    with single_thread(), pytest.raises(ValueError, match="no threshold in"):
        calibrate_bundle(path, 0.0, validation=_noisy(160, 7), eval_sets={}, seen_sources=["sms_uci"])
    assert (path / "phishlens.json").read_bytes() == manifest
