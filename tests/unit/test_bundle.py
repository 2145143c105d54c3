"""The adapter bundle contract (DESIGN.md §3): a real trained tiny bundle loads; every way of breaking
it is refused with a message that says why. Bundles are copied to tmp before being mutated."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from phishlens.training.contract.bundle import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    MANIFEST,
    BundleError,
    content_sha256,
    load_bundle,
)
from phishlens.training.contract.prompt import DEFAULT_TEMPLATE, label_token_ids


@pytest.fixture()
def bundle_dir(tiny_bundles, tmp_path) -> Path:
    """A private copy of the zebra-phish bundle, free to mutate."""
    _root, phish, _legit = tiny_bundles
    dst = tmp_path / phish.path.name
    shutil.copytree(phish.path, dst)
    return dst


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _refused(path: Path, *needles: str, **kw) -> str:
    with pytest.raises(BundleError) as ei:
        load_bundle(path, **kw)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------------------------------ round trip


def test_trained_bundle_round_trips(tiny_bundles, tiny_llama, tokenizer):
    root, phish, legit = tiny_bundles
    b = load_bundle(phish.path, expected_base_sha256=tiny_llama.sha256)
    m = b.manifest
    assert b.name == "zebra-phish" and m.format == 1 and m.task == "label_tokens"
    assert b.path == phish.path.resolve() and b.path.parent == root.resolve()
    assert m.base_model.sha256 == tiny_llama.sha256 and m.base_model.architecture == "llama"
    assert m.prompt.template == DEFAULT_TEMPLATE and m.prompt.max_text_tokens == 32
    assert [lab.name for lab in m.labels] == ["phishing", "legitimate"]
    assert m.label_token_ids == label_token_ids(tokenizer, [lab.word for lab in m.labels])
    assert m.lora.r == 8 and m.lora.layers == [2, 3]  # top 2 of 4 layers
    assert m.training_data.rows == {"train": 400, "validation": 80}
    c = m.calibration
    assert 0 < c.temperature and c.uncertain_low <= c.threshold <= c.uncertain_high
    assert m.metrics["test"]["sms"]["n"] == 80 and m.metrics["train"]["steps"] > 0
    assert {g.label for g in m.golden} == {"phishing", "legitimate"}
    # The other bundle is a different adapter: different content hash.
    assert legit.sha256 != phish.sha256 and legit.manifest.name == "zebra-legit"


def test_content_hash_is_stable_and_sensitive_to_one_byte(bundle_dir):
    a = load_bundle(bundle_dir).sha256
    b = load_bundle(bundle_dir).sha256
    assert a == b == content_sha256(bundle_dir)
    assert len(a) == 64
    # The copy hashes like the original: the hash is over relative names and bytes, not the location.
    w = bundle_dir / ADAPTER_WEIGHTS
    data = bytearray(w.read_bytes())
    data[-1] ^= 0x01  # last byte of the last tensor: still a valid safetensors file
    w.write_bytes(bytes(data))
    c = load_bundle(bundle_dir).sha256
    assert c != a
    data[-1] ^= 0x01
    w.write_bytes(bytes(data))
    assert load_bundle(bundle_dir).sha256 == a


def test_copy_hashes_like_original(tiny_bundles, bundle_dir):
    assert load_bundle(bundle_dir).sha256 == tiny_bundles[1].sha256


# ------------------------------------------------------------------------------------------ refusals


def test_missing_weights(bundle_dir):
    (bundle_dir / ADAPTER_WEIGHTS).unlink()
    _refused(bundle_dir, "missing", ADAPTER_WEIGHTS)


def test_not_a_directory(tmp_path):
    _refused(tmp_path / "nope", "is not a directory")


@pytest.mark.parametrize("name", ["adapter_model.bin", "extra.pkl", "sub/weights.pt", "hook.py"])
def test_pickle_and_code_files_refused(bundle_dir, name):
    f = bundle_dir / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"\x80\x04K\x01.")  # a valid pickle of the int 1
    _refused(bundle_dir, "never pickle", name)


def test_symlink_refused(bundle_dir, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.symlink(outside, bundle_dir / "linked.json")
    _refused(bundle_dir, "linked.json (symlink)")


def test_wrong_base_sha(bundle_dir, tiny_llama):
    assert load_bundle(bundle_dir, expected_base_sha256=tiny_llama.sha256)
    other = "0" * 64
    _refused(
        bundle_dir, "trained on base weights", tiny_llama.sha256[:12], other[:12], expected_base_sha256=other
    )


def test_malformed_manifest_json(bundle_dir):
    (bundle_dir / MANIFEST).write_text('{"format": 1, "name": ')
    _refused(bundle_dir, f"{MANIFEST} is not valid JSON")


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda m: m.update(surprise=1), ("malformed manifest", "surprise", "Extra inputs")),
        (lambda m: m.update(format=2), ("manifest format 2 is not supported",)),
        (
            lambda m: m.update(labels=m["labels"][::-1]),
            ("labels must be [phishing, legitimate] in that order",),
        ),
        (
            lambda m: m["calibration"].update(threshold=0.9, uncertain_high=0.7),
            ("calibration", "need uncertain_low <= threshold <= uncertain_high"),
        ),
        (lambda m: m["calibration"].update(threshold=1.0), ("calibration.threshold", "less than 1")),
        (lambda m: m["prompt"].update(template="no slot here"), ("prompt.template", "{text} exactly once")),
        (
            lambda m: m["labels"][1].update(token_id=m["labels"][0]["token_id"]),
            ("label token ids must differ",),
        ),
        (lambda m: m["base_model"].update(sha256="abc"), ("base_model.sha256",)),
    ],
    ids=[
        "unknown-field",
        "format-2",
        "labels-order",
        "threshold-outside-band",
        "threshold-range",
        "template-slot",
        "same-label-token",
        "short-sha",
    ],
)
def test_manifest_refusals(bundle_dir, edit, needles):
    _edit_json(bundle_dir / MANIFEST, edit)
    _refused(bundle_dir, "zebra-phish", *needles)


def test_corrupt_safetensors_header(bundle_dir):
    w = bundle_dir / ADAPTER_WEIGHTS
    data = bytearray(w.read_bytes())
    data[8:16] = b"garbage!"  # the JSON header starts at byte 8
    w.write_bytes(bytes(data))
    _refused(bundle_dir, f"{ADAPTER_WEIGHTS} is not a readable safetensors file")


def test_truncated_safetensors(bundle_dir):
    w = bundle_dir / ADAPTER_WEIGHTS
    w.write_bytes(w.read_bytes()[:100])
    _refused(bundle_dir, f"{ADAPTER_WEIGHTS} is not a readable safetensors file")


def test_dora_adapter_refused(bundle_dir):
    _edit_json(bundle_dir / ADAPTER_CONFIG, lambda c: c.update(use_dora=True))
    _refused(bundle_dir, "DoRA adapters are not supported")


def test_rank_mismatch_refused(bundle_dir):
    _edit_json(bundle_dir / ADAPTER_CONFIG, lambda c: c.update(r=4))
    _refused(bundle_dir, "rank 4 differs from manifest rank 8")


def test_not_lora_refused(bundle_dir):
    _edit_json(bundle_dir / ADAPTER_CONFIG, lambda c: c.update(peft_type="IA3"))
    _refused(bundle_dir, "peft_type is 'IA3', expected 'LORA'")
