"""ClassifyService: calibration, multi-adapter scoring in one backend call, caps, admission, golden checks."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from phishlens.server.errors import AdapterNotFound, BackendFailure, Overloaded, PayloadTooLarge
from phishlens.server.metrics import Metrics
from phishlens.server.registry import AdapterRegistry
from phishlens.server.services.classify import ClassifyService, calibrate
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import Calibration
from tests.fakes import expected_p, write_bundle

PHISHY, CLEAN = "verify your account, urgent action required", "see you at lunch tomorrow"


async def service(fake_backend, adapter_root, names=("default", "alt"), **kw):
    settings = Settings(adapter_roots=[adapter_root], adapters=list(names), **kw)
    metrics = Metrics()
    reg = AdapterRegistry(fake_backend, settings, metrics)
    await reg.open()
    return ClassifyService(fake_backend, reg, settings, metrics)


def test_calibrate():
    cal = Calibration(temperature=2.0, threshold=0.6, uncertain_low=0.4, uncertain_high=0.7)
    p, label, unc = calibrate((math.log(0.9), math.log(0.1)), cal)
    assert math.isclose(p, 1 / (1 + math.exp(-math.log(9) / 2)), rel_tol=1e-12)  # 0.75
    assert label == "phishing" and not unc
    p, label, unc = calibrate((math.log(0.5), math.log(0.5)), cal)
    assert p == 0.5 and label == "legitimate" and unc
    p, _, _ = calibrate((-1000.0, 0.0), Calibration())  # no overflow
    assert 0.0 <= p < 1e-300


def test_classify_default_and_multi_adapter_one_backend_call(fake_backend, adapter_root):
    async def go():
        svc = await service(fake_backend, adapter_root)
        out = await svc.classify([PHISHY, CLEAN])
        assert [r.label for r in out.results] == ["phishing", "legitimate"]
        assert math.isclose(out.results[0].p_phishing, expected_p(True), abs_tol=1e-9)
        assert {r.adapter for r in out.results} == {"default"}
        fake_backend.calls.clear()
        out = await svc.classify([PHISHY, CLEAN], ["default", "alt"])
        assert len(fake_backend.calls) == 1 and len(fake_backend.calls[0]) == 4  # one mixed call
        got = [(r.index, r.adapter, round(r.p_phishing, 9)) for r in out.results]
        want = [
            (0, "default", round(expected_p(True, 1.0), 9)),
            (0, "alt", round(expected_p(True, 2.0), 9)),
            (1, "default", round(expected_p(False, 1.0), 9)),
            (1, "alt", round(expected_p(False, 2.0), 9)),
        ]
        assert got == want
        assert out.prompt_tokens == sum(len(r.prompt_ids) for r in fake_backend.calls[0])
        assert [r.adapter_id for r in (q.adapter for q in fake_backend.calls[0])] == [
            svc.registry.get(n).handle.adapter_id for n in ("default", "alt", "default", "alt")
        ]
        text = svc.metrics.render().decode()
        assert 'phishlens_classifications_total{adapter="alt",label="phishing"} 1.0' in text

    asyncio.run(go())


def test_truncation_flag(fake_backend, adapter_root):
    async def go():
        svc = await service(fake_backend, adapter_root)
        out = await svc.classify(["hi, urgent " + "word " * 500 + "end"])
        assert out.results[0].truncated and out.results[0].label == "phishing"  # head kept

    asyncio.run(go())


def test_caps_and_unknown_adapter(fake_backend, adapter_root):
    async def go():
        svc = await service(fake_backend, adapter_root, max_batch=2, max_chars=10)
        with pytest.raises(PayloadTooLarge, match="3 texts"):
            await svc.classify(["a", "b", "c"])
        with pytest.raises(PayloadTooLarge, match=r"input\[1\]"):
            await svc.classify(["a", "x" * 11])
        with pytest.raises(AdapterNotFound):
            await svc.classify(["a"], ["nope"])
        assert svc.inflight == 0

    asyncio.run(go())


def test_admission_control_and_backend_failure(fake_backend, adapter_root):
    async def go():
        svc = await service(fake_backend, adapter_root, max_queue=3)
        fake_backend.gate = threading.Event()
        first = asyncio.create_task(svc.classify(["a", "b"]))
        await asyncio.sleep(0.05)
        assert svc.inflight == 2 and svc.metrics.inflight_texts._value.get() == 2
        with pytest.raises(Overloaded):
            await svc.classify(["c", "d"])
        fake_backend.gate.set()
        await first
        fake_backend.gate = None
        assert svc.inflight == 0
        fake_backend.fail = "engine dead"
        with pytest.raises(BackendFailure, match="engine dead"):
            await svc.classify(["a"])
        assert svc.inflight == 0

    asyncio.run(go())


def test_golden_check_not_in_metrics(fake_backend, adapter_root, tmp_path, tokenizer, smollm2_base):
    async def go():
        svc = await service(fake_backend, adapter_root)
        report = await svc.golden_check()
        assert report.ok, report.failures
        assert b"phishlens_classifications_total{" not in svc.metrics.render()
        write_bundle(
            adapter_root,
            "wrong-golden",
            tokenizer=tokenizer,
            base_sha256=smollm2_base.sha256,
            golden=[("see you at lunch", "phishing")],
        )
        await svc.registry.load("wrong-golden")
        report = await svc.golden_check()
        assert not report.ok and "wrong-golden: golden example 0 expected phishing" in report.failures[0]
        await svc.registry.unload("wrong-golden")
        assert (await svc.golden_check()).ok

    try:
        asyncio.run(go())
    finally:
        import shutil

        shutil.rmtree(adapter_root / "wrong-golden", ignore_errors=True)


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[list[str], str, int]] = []

    def observe(self, texts, outcome) -> None:
        self.seen.append((list(texts), outcome.request_id, len(outcome.results)))


class _Broken:
    def observe(self, texts, outcome) -> None:
        raise RuntimeError("observer bug")


def test_observers_see_served_traffic_only(fake_backend, adapter_root):
    """Observers (drift, feedback) get every served classification with its request id, never the golden
    self-test; a failing observer is logged and never fails the request."""

    async def go():
        svc = await service(fake_backend, adapter_root)
        rec = _Recorder()
        svc.observers += [_Broken(), rec]
        await svc.golden_check()
        assert rec.seen == []
        out = await svc.classify([PHISHY, CLEAN], ["default", "alt"])
        assert out.request_id.startswith("clf-") and len(out.request_id) > 20
        assert rec.seen == [([PHISHY, CLEAN], out.request_id, 4)]
        out2 = await svc.classify([CLEAN])
        assert out2.request_id != out.request_id and len(rec.seen) == 2

    asyncio.run(go())
