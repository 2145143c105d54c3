"""Bundle artefact framework: builders record their files in the manifest; rebuilt validation rows must
match the bundle's data fingerprint."""

from __future__ import annotations

import pytest

from phishlens.training import artifacts as A
from phishlens.training.artifacts import build
from phishlens.training.contract.bundle import load_bundle, read_manifest
from tests.fakes import write_bundle


def _ctx(path):
    return A.ArtifactContext(path, read_manifest(path), [], model=None, tokenizer=None, encoder=None)


def test_unknown_group_is_refused(tmp_path, tokenizer, smollm2_base):
    p = write_bundle(tmp_path, "b", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)
    with pytest.raises(ValueError, match="unknown artefact group"):
        A.build_artifacts(_ctx(p), ["no-such-group"])


def test_builder_files_recorded_and_checked(tmp_path, tokenizer, smollm2_base, monkeypatch):
    p = write_bundle(tmp_path, "b", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)
    before = load_bundle(p).sha256

    def good(ctx):
        build.atomic_write_bytes(ctx.bundle_dir / "thing.json", b'{"ok": true}')
        return {"thing": "thing.json"}

    def liar(ctx):
        return {"ghost": "ghost.json"}

    monkeypatch.setattr(build, "BUILDERS", {"good": good, "liar": liar})
    m = A.build_artifacts(_ctx(p), ["good"])
    assert m.extras == {"thing": "thing.json"}
    b = load_bundle(p)
    assert b.manifest.extras == {"thing": "thing.json"} and b.sha256 != before
    with pytest.raises(RuntimeError, match="ghost.json"):
        A.build_artifacts(_ctx(p), ["liar"])


@pytest.mark.data
def test_validation_rows_match_shipped_fingerprint(data_root):
    from phishlens.training.commands.train import REPO

    m = read_manifest(REPO / "adapters" / "specialist-sms")
    rows = A.validation_rows(m, data_root)
    assert len(rows) == m.training_data.rows["validation"]
    bad = m.model_copy(update={"training_data": m.training_data.model_copy(update={"fingerprint": "0" * 64})})
    with pytest.raises(ValueError, match="fingerprint"):
        A.validation_rows(bad, data_root)
