"""Adapter paths stay confined to the roots even when a directory is swapped for a symlink after the path
check; bundles are size- and file-capped; what is served is the private copy that was validated."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from phishlens.server.bundle_snapshot import snapshot_bundle
from phishlens.server.errors import BadRequest, PayloadTooLarge
from phishlens.server.registry import AdapterRegistry
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import content_sha256


@pytest.fixture()
def roots(tmp_path, adapter_root):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copytree(adapter_root / "default", root / "good")
    shutil.copytree(adapter_root / "alt", outside / "evil")  # a valid bundle, but outside the roots
    return root, outside


def registry(fake_backend, root, tmp_path, **kw) -> AdapterRegistry:
    s = Settings(adapter_roots=[root], adapters=[], adapter_staging_dir=tmp_path / "staging", **kw)
    return AdapterRegistry(fake_backend, s)


def test_symlink_swapped_in_after_the_path_check_is_refused(fake_backend, roots, tmp_path, monkeypatch):
    root, outside = roots
    reg = registry(fake_backend, root, tmp_path)
    checked = reg.resolve_path

    def check_then_swap(ref: str) -> Path:
        real = checked(ref)  # the check passes on the real directory...
        shutil.move(str(root / "good"), str(tmp_path / "moved"))
        os.symlink(outside / "evil", root / "good")  # ...then it becomes a link out of the roots
        return real

    monkeypatch.setattr(reg, "resolve_path", check_then_swap)
    with pytest.raises(BadRequest, match="symlink"):
        asyncio.run(reg.load("good"))
    assert len(reg) == 0 and fake_backend.adapters == {}
    assert list(reg.staging.iterdir()) == []  # the partial copy is gone


def test_symlinked_parent_swapped_in_is_refused(roots, tmp_path):
    root, outside = roots
    (root / "team").mkdir()
    shutil.copytree(root / "good", root / "team" / "b")
    real = (root / "team" / "b").resolve()
    shutil.move(str(root / "team"), str(tmp_path / "team-moved"))
    (outside / "team").mkdir()
    shutil.copytree(outside / "evil", outside / "team" / "b")
    os.symlink(outside / "team", root / "team")
    with pytest.raises(BadRequest, match="symlink"):
        snapshot_bundle(real, [root], tmp_path / "staging", 1 << 30, 64)


def test_served_copy_is_what_was_checked(fake_backend, roots, tmp_path):
    root, _ = roots
    reg = registry(fake_backend, root, tmp_path)
    entry = asyncio.run(reg.load("good"))
    assert entry.bundle.path.parent == reg.staging  # the engine reads the private copy
    assert entry.sha256 == content_sha256(root / "good")  # same files, same content hash
    (root / "good" / "phishlens.json").write_text("{}")  # later edits to the source change nothing served
    assert entry.sha256 == content_sha256(entry.bundle.path)
    asyncio.run(reg.unload(entry.name))
    assert not entry.bundle.path.exists()  # the copy goes with the adapter


def test_symlink_and_fifo_inside_a_bundle_are_refused(roots, tmp_path):
    root, outside = roots
    os.symlink(outside / "evil" / "phishlens.json", root / "good" / "extra.json")
    with pytest.raises(BadRequest, match="symlink"):
        snapshot_bundle(root / "good", [root], tmp_path / "s1", 1 << 30, 64)
    os.unlink(root / "good" / "extra.json")
    os.mkfifo(root / "good" / "pipe.json")
    with pytest.raises(BadRequest, match="regular file"):
        snapshot_bundle(root / "good", [root], tmp_path / "s2", 1 << 30, 64)


def test_size_and_file_caps(fake_backend, roots, tmp_path):
    root, _ = roots
    size = sum(f.stat().st_size for f in (root / "good").iterdir())
    with pytest.raises(PayloadTooLarge, match="larger than"):
        snapshot_bundle(root / "good", [root], tmp_path / "s1", size - 1, 64)
    snapshot_bundle(root / "good", [root], tmp_path / "s2", size, 64)
    for i in range(10):
        (root / "good" / f"pad{i}.json").write_text("{}")
    with pytest.raises(PayloadTooLarge, match="files"):
        snapshot_bundle(root / "good", [root], tmp_path / "s3", 1 << 30, 8)
    reg = registry(fake_backend, root, tmp_path, max_bundle_bytes=1024)
    with pytest.raises(PayloadTooLarge):
        asyncio.run(reg.load("good"))
    assert list(reg.staging.iterdir()) == []
