"""AdapterRegistry: allow-listed paths, base check, cap, leases across unload, metric series cleanup."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from phishlens.server.errors import AdapterNotFound, BadRequest
from phishlens.server.metrics import Metrics
from phishlens.server.registry import AdapterRegistry
from phishlens.server.settings import Settings
from tests.fakes import write_bundle


def make(fake_backend, adapter_root, **kw):
    settings = Settings(adapter_roots=[adapter_root], adapters=[], **kw)
    return AdapterRegistry(fake_backend, settings, Metrics())


def test_load_by_name_get_list_and_default(fake_backend, adapter_root):
    async def go():
        reg = make(fake_backend, adapter_root)
        e = await reg.load("default")
        alt = await reg.load(str(adapter_root / "alt"))
        assert reg.get(None) is e and reg.get("alt") is alt
        assert [x.name for x in reg.list()] == ["alt", "default"]
        assert e.handle.adapter_id != alt.handle.adapter_id
        assert len(e.sha256) == 64 and e.sha256 != alt.sha256
        assert fake_backend.adapters[e.handle.adapter_id] == e.handle
        assert reg.metrics.adapters_loaded._value.get() == 2
        renamed = await reg.load("alt", name="alt-2")  # same bundle, second name
        assert renamed.sha256 == alt.sha256 and renamed.handle.adapter_id not in (1, 2)
        with pytest.raises(BadRequest, match="already loaded"):
            await reg.load("alt")
        with pytest.raises(AdapterNotFound):
            reg.get("nope")

    asyncio.run(go())


@pytest.mark.parametrize("ref", ["../x", "default/../../etc", "/etc", "/tmp", "..", "a\x00b"])
def test_paths_outside_roots_are_refused(fake_backend, adapter_root, ref):
    reg = make(fake_backend, adapter_root)
    with pytest.raises(BadRequest, match="outside|'..'|NUL|no bundle"):
        reg.resolve_path(ref)


def test_symlink_out_of_root_is_refused(fake_backend, adapter_root, tmp_path, tokenizer, smollm2_base):
    outside = write_bundle(
        tmp_path / "elsewhere", "evil", tokenizer=tokenizer, base_sha256=smollm2_base.sha256
    )
    link = adapter_root / "evil-link"
    os.symlink(outside, link)
    try:
        reg = make(fake_backend, adapter_root)
        with pytest.raises(BadRequest, match="outside"):
            reg.resolve_path("evil-link")
        with pytest.raises(BadRequest, match="outside"):
            asyncio.run(reg.load(str(outside)))
    finally:
        link.unlink()


def test_wrong_base_and_bad_bundle_are_400(fake_backend, adapter_root, tokenizer):
    other = write_bundle(adapter_root, "other-base", tokenizer=tokenizer, base_sha256="f" * 64)
    broken = adapter_root / "broken"
    shutil.copytree(adapter_root / "default", broken)
    (broken / "model.pt").write_bytes(b"pickle")
    try:
        reg = make(fake_backend, adapter_root)
        with pytest.raises(BadRequest, match="base weights"):
            asyncio.run(reg.load("other-base"))
        with pytest.raises(BadRequest, match="never pickle"):
            asyncio.run(reg.load("broken"))
        assert len(reg) == 0
    finally:
        shutil.rmtree(other)
        shutil.rmtree(broken)


def test_cap(fake_backend, adapter_root):
    async def go():
        reg = make(fake_backend, adapter_root, max_loaded_adapters=2)
        await reg.load("default")
        await reg.load("alt")
        with pytest.raises(BadRequest, match="cap reached"):
            await reg.load("spare")
        await reg.unload("alt")
        await reg.load("spare")

    asyncio.run(go())


def test_unload_waits_for_leases_and_new_requests_404(fake_backend, adapter_root):
    async def go():
        reg = make(fake_backend, adapter_root)
        e = await reg.load("alt")
        with reg.lease(["alt"]) as held:
            task = asyncio.create_task(reg.unload("alt"))
            await asyncio.sleep(0.01)
            assert not task.done()  # waiting on our lease
            with pytest.raises(AdapterNotFound):
                reg.get("alt")  # already gone for new requests
            assert held[0] is e and e.handle.adapter_id in fake_backend.adapters  # still servable
        await asyncio.wait_for(task, 1)
        assert e.handle.adapter_id not in fake_backend.adapters and fake_backend.removed == [e.handle]

    asyncio.run(go())


def test_unload_unknown_and_metric_series_dropped(fake_backend, adapter_root):
    async def go():
        reg = make(fake_backend, adapter_root)
        await reg.load("alt")
        reg.metrics.observe_classification("alt", "phishing", 0.9)
        assert b'adapter="alt"' in reg.metrics.render()
        await reg.unload("alt")
        assert b'adapter="alt"' not in reg.metrics.render()
        with pytest.raises(AdapterNotFound):
            await reg.unload("alt")

    asyncio.run(go())


def test_replace_swaps_without_a_gap_and_retires_the_old_entry_after_its_requests(fake_backend, adapter_root):
    """A replace never leaves the name unresolvable: the map swaps in one step, a request admitted before
    the swap keeps the old weights, and the old engine slot is freed only after that request ends."""

    async def go():
        reg = make(fake_backend, adapter_root)
        old = await reg.load("default", name="flip")
        reg.metrics.observe_classification("flip", "phishing", 0.9)
        with pytest.raises(BadRequest, match="replace=true"):
            await reg.load("alt", name="flip")  # without the flag: refused, nothing changed
        assert reg.get("flip") is old
        with reg.lease(["flip"]) as held:
            task = asyncio.create_task(reg.load("alt", name="flip", replace=True))
            for _ in range(100):  # the new weights go in, then the swap, then the wait for our lease
                await asyncio.sleep(0.005)
                if reg.get("flip") is not old:
                    break
            new = reg.get("flip")  # never a 404 while swapping
            assert new is not old and new.sha256 != old.sha256 and not task.done()
            assert held[0] is old and old.handle.adapter_id in fake_backend.adapters  # still servable
            assert old.retired and not new.retired
        entry = await asyncio.wait_for(task, 1)
        assert entry is new and reg.get("flip") is new and len(reg) == 1
        assert old.handle.adapter_id not in fake_backend.adapters and fake_backend.removed == [old.handle]
        assert not old.bundle.path.exists() and new.bundle.path.exists()  # the old private copy is gone
        assert b'adapter="flip"' in reg.metrics.render()  # same name serving on: its series are kept
        assert reg.metrics.adapters_loaded._value.get() == 1

    asyncio.run(go())


def test_replace_at_the_cap_uses_the_spare_engine_slot_one_swap_at_a_time(
    tokenizer, smollm2_base, adapter_root
):
    from tests.fakes import FakeBackend

    async def go():
        backend = FakeBackend(tokenizer, smollm2_base.sha256, max_adapters=3)  # 2 names + 1 spare
        reg = make(backend, adapter_root, max_loaded_adapters=2)
        await reg.load("default")
        await reg.load("alt")
        with pytest.raises(BadRequest, match="cap reached"):
            await reg.load("spare")
        with reg.lease(["alt"]):  # holds the first swap open
            first = asyncio.create_task(reg.load("spare", name="alt", replace=True))
            await asyncio.sleep(0.05)
            assert not first.done() and len(backend.adapters) == 3
            with pytest.raises(BadRequest, match="no free engine slot"):
                await reg.load("spare", name="default", replace=True)
        await asyncio.wait_for(first, 1)
        assert len(backend.adapters) == 2 and reg.get("alt").sha256 == reg.get("alt").bundle.sha256
        replaced = await reg.load("spare", name="default", replace=True)  # the slot is free again
        assert reg.get("default") is replaced and len(backend.adapters) == 2

    asyncio.run(go())


def test_replace_of_a_name_not_loaded_is_a_plain_load(fake_backend, adapter_root):
    async def go():
        reg = make(fake_backend, adapter_root)
        e = await reg.load("alt", name="fresh", replace=True)
        assert reg.get("fresh") is e and fake_backend.removed == []

    asyncio.run(go())


def test_an_unload_still_draining_holds_its_engine_slot_and_survives_cancellation(
    tokenizer, smollm2_base, adapter_root
):
    """The engine copy of an unloaded adapter stays until its requests finish: it counts against the
    engine's slots until then, and cancelling the admin request that unloads it does not strand it."""
    from tests.fakes import FakeBackend

    async def go():
        backend = FakeBackend(tokenizer, smollm2_base.sha256, max_adapters=3)  # 2 names + 1 spare
        reg = make(backend, adapter_root, max_loaded_adapters=2)
        await reg.load("default")
        alt = await reg.load("alt")
        with reg.lease(["alt"]):
            unload = asyncio.create_task(reg.unload("alt"))
            await asyncio.sleep(0.05)
            await reg.load("spare")  # a free name: the spare slot takes it while alt drains
            assert len(backend.adapters) == 3
            with pytest.raises(BadRequest, match="no free engine slot"):
                await reg.load("alt", name="default", replace=True)  # all three slots are in use
            unload.cancel()  # e.g. the admin's connection dropped
            with pytest.raises(asyncio.CancelledError):
                await unload
            assert alt.handle.adapter_id in backend.adapters  # our request still runs on it
        for _ in range(100):  # the lease is back: the shielded retirement finishes on its own
            if alt.handle.adapter_id not in backend.adapters:
                break
            await asyncio.sleep(0.01)
        assert alt.handle.adapter_id not in backend.adapters and not alt.bundle.path.exists()
        replaced = await reg.load("alt", name="default", replace=True)  # the slot is free again
        assert reg.get("default") is replaced and len(backend.adapters) == 2

    asyncio.run(go())
