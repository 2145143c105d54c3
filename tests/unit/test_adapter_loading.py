"""One `load_adapter_model` for evaluation, artefacts and diagnosis: adapters of one base share one peft
model, each scores as when loaded alone, and a base whose weights differ is refused."""

from __future__ import annotations

import numpy as np
import pytest

from phishlens.training.commands.evaluate import adapter_scorers
from phishlens.training.contract.bundle import BundleError
from phishlens.training.model.loading import CachedScorer, load_adapter_model
from tests.models import planted, single_thread


def _alone(bundle, texts):
    am = load_adapter_model(bundle)
    m = bundle.manifest
    return CachedScorer(
        am.model, am.encoder(bundle), 0, m.label_token_ids, am.pad_id, temperature=m.calibration.temperature
    )(texts)


def test_shared_base_scores_like_each_adapter_alone(tiny_bundles):
    _, phish, legit = tiny_bundles
    texts = [r.text for r in planted(8, seed=11)]
    with single_thread():
        shared = {b.name: np.asarray(s(texts)) for b, s in adapter_scorers([phish, legit])}
        alone = {b.name: _alone(b, texts) for b in (phish, legit)}
    for name in shared:
        assert np.allclose(shared[name], alone[name], atol=1e-5), name
    # the planted rules are opposite: the two adapters disagree on the trigger texts
    assert np.corrcoef(shared["zebra-phish"], shared["zebra-legit"])[0, 1] < 0
    am = load_adapter_model(phish)
    assert load_adapter_model(legit, into=am) is am and set(am.bundles) == {"zebra-phish", "zebra-legit"}
    assert am.model.active_adapter == "zebra-legit"


def test_a_base_with_other_weights_is_refused(tiny_bundles, tmp_path):
    import shutil

    from phishlens.training.contract.bundle import load_bundle, read_manifest, write_manifest

    _, phish, _ = tiny_bundles
    copy = tmp_path / "zebra-phish"
    shutil.copytree(phish.path, copy)
    m = read_manifest(copy)
    other = m.base_model.model_copy(update={"sha256": "0" * 64})
    write_manifest(copy, m.model_copy(update={"base_model": other}))
    with pytest.raises(BundleError, match="base weights"):
        load_adapter_model(load_bundle(copy))
