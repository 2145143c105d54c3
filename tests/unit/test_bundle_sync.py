"""Bundle lock / fetch / verify (training/bundle_sync.py): what the Kubernetes init container runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phishlens.training import bundle_sync as bs
from phishlens.training.contract.bundle import content_sha256

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "adapters" / "default"


@pytest.fixture()
def store(tmp_path) -> Path:
    """A bundle store (a PersistentVolume's content): one real shipped bundle under two names."""
    root = tmp_path / "store"
    for name in ("default", "other"):
        shutil.copytree(SHIPPED, root / name)
    return root


@pytest.fixture()
def lock_file(store, tmp_path) -> Path:
    out = tmp_path / "bundles.json"
    res = CliRunner().invoke(
        bs.app, ["lock", str(store / "default"), str(store / "other"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out


def test_lock_records_the_served_sha256(lock_file, store):
    doc = json.loads(lock_file.read_text())
    assert doc == {
        "format": 1,
        "bundles": {"default": content_sha256(store / "default"), "other": content_sha256(store / "other")},
    }


def test_fetch_from_a_volume_copies_and_verifies(lock_file, store, tmp_path):
    dest = tmp_path / "adapters"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "phishlens.training.bundle_sync",
            "fetch",
            "--lock",
            str(lock_file),
            "--source",
            str(store),
            "--dest",
            str(dest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "verified 2 bundle(s): default, other" in res.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["default", "other"]
    assert content_sha256(dest / "default") == content_sha256(SHIPPED)
    assert CliRunner().invoke(bs.app, ["verify", str(dest), "--lock", str(lock_file)]).exit_code == 0


def test_a_tampered_bundle_is_refused_and_never_published(lock_file, store, tmp_path):
    p = store / "other" / "adapter_model.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the weights: still a readable safetensors file
    p.write_bytes(bytes(data))
    dest = tmp_path / "adapters"
    res = CliRunner().invoke(
        bs.app, ["fetch", "--lock", str(lock_file), "--source", str(store), "--dest", str(dest)]
    )
    assert res.exit_code == 1
    assert "bundle other: sha256" in res.output and "differs from the lock" in res.output
    assert sorted(p.name for p in dest.iterdir()) == ["default"]  # no half-copied or unverified bundle
    res = CliRunner().invoke(bs.app, ["verify", str(store), "--lock", str(lock_file)])
    assert res.exit_code == 1 and "bundle other" in res.output and "bundle default" not in res.output


def test_missing_or_foreign_files_fail_with_the_reason(lock_file, store, tmp_path):
    shutil.rmtree(store / "other")
    (store / "default" / "payload.pkl").write_bytes(b"\x80\x04")
    res = CliRunner().invoke(
        bs.app, ["fetch", "--lock", str(lock_file), "--source", str(store), "--dest", str(tmp_path / "a")]
    )
    assert res.exit_code == 1
    assert "bundle other: not found in the bundle store" in res.output
    assert "bundle default: invalid bundle" in res.output and "payload.pkl" in res.output
    assert not any((tmp_path / "a").iterdir())


def test_fetch_through_fsspec_object_storage(lock_file, store, tmp_path):
    """The s3:// / gs:// path is fsspec's: here its in-memory filesystem stands in for the bucket."""
    import fsspec

    mem = fsspec.filesystem("memory")
    for f in store.rglob("*"):
        if f.is_file():
            mem.pipe_file(f"/bucket/models/{f.relative_to(store)}", f.read_bytes())
    try:
        dest = tmp_path / "adapters"
        assert not bs.fetch("memory://bucket/models", dest, bs.read_lock(lock_file))
        assert content_sha256(dest / "other") == content_sha256(store / "other")
    finally:
        mem.rm("/bucket", recursive=True)


@pytest.mark.parametrize(
    "doc",
    [
        {"format": 2, "bundles": {"a": "0" * 64}},
        {"format": 1, "bundles": {}},
        {"format": 1, "bundles": {"../x": "0" * 64}},
        {"format": 1, "bundles": {"a": "XYZ"}},
    ],
)
def test_bad_lock_files_exit_2(tmp_path, doc):
    f = tmp_path / "lock.json"
    f.write_text(json.dumps(doc))
    res = CliRunner().invoke(bs.app, ["verify", str(tmp_path), "--lock", str(f)])
    assert res.exit_code == 2 and "error:" in res.output
