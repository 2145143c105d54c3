"""The live drift monitor on real registry + ClassifyService + fake backend, with a tiny bundle whose
reference profile is built here: in-distribution windows do not alert, shifted ones do; state survives a
restart (and is discarded for another bundle version); self-test traffic never enters."""

from __future__ import annotations

import asyncio
import random
import zlib

import numpy as np
import pytest

from phishlens.explain.reference import build_profile
from phishlens.server.metrics import Metrics
from phishlens.server.registry import AdapterRegistry
from phishlens.server.services.classify import ClassifyService
from phishlens.server.services.drift import DriftMonitor
from phishlens.server.services.drift_metrics import DriftMetrics
from phishlens.server.settings import Settings
from phishlens.training.contract.bundle import load_bundle, write_manifest
from tests.fakes import FakeBackend, expected_p, write_bundle

WORDS = [
    "the",
    "a",
    "meeting",
    "lunch",
    "report",
    "invoice",
    "tomorrow",
    "please",
    "call",
    "office",
    "team",
    "project",
    "update",
    "schedule",
    "notes",
    "draft",
    "friday",
    "review",
    "budget",
    "plan",
    "thanks",
    "agenda",
    "slides",
    "client",
]
MAIL = [
    "dear",
    "customer",
    "account",
    "verify",
    "bank",
    "login",
    "security",
    "suspended",
    "password",
    "confirm",
    "billing",
    "department",
    "immediately",
    "limited",
    "access",
    "restore",
    "identity",
    "click",
]
WINDOW = 40


def sms(n: int, seed: int, every: int = 2) -> list[str]:
    """Short lower-case notes; one in `every` carries ' urgent' (the fake backend's phishing trigger)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        w = [rng.choice(WORDS) for _ in range(rng.randint(5, 14))]
        if i % every == every - 1:
            w.insert(rng.randint(1, len(w)), "urgent")
        out.append(" ".join(w))
    return out


def mails(n: int, seed: int) -> list[str]:
    """HTML e-mails with URLs, digits and capitals: another style entirely."""
    rng = random.Random(seed)
    return [
        "<html><body><p>"
        + " ".join(
            rng.choice(MAIL).upper() if k % 5 == 0 else rng.choice(MAIL) for k in range(rng.randint(30, 60))
        )
        + f"</p>\n<a href='http://secure-{i}.example.com/login'>Ref #{rng.randint(10000, 99999)}</a>\n"
        "</body></html>"
        for i in range(n)
    ]


def hash_embed(texts) -> np.ndarray:
    """A cheap deterministic bag-of-words embedding (MiniLM itself is tested in test_drift_api)."""
    out = np.full((len(texts), 64), 1e-3, dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory, tokenizer, smollm2_base):
    root = tmp_path_factory.mktemp("drift-adapters")
    path = write_bundle(
        root,
        "tiny",
        tokenizer=tokenizer,
        base_sha256=smollm2_base.sha256,
        golden=[("please reply urgent now", "phishing"), ("lunch at noon", "legitimate")],
    )
    texts = sms(400, seed=1)
    y = [" urgent" in " " + t for t in texts]
    prof = build_profile(
        "tiny",
        texts,
        [expected_p(v) for v in y],
        y,
        hash_embed(texts),
        calibration_prior=0.5,
        embed_model="hash",
        windows=(WINDOW,),
        n_sims=500,
        alpha=0.01,
    )
    extras = prof.save(path)
    m = load_bundle(path).manifest
    write_manifest(path, m.model_copy(update={"extras": extras}))
    write_bundle(root, "plain", tokenizer=tokenizer, base_sha256=smollm2_base.sha256)  # no reference
    return root


class Rig:
    def __init__(self, root, tokenizer, sha, state_dir) -> None:
        self.settings = Settings(
            adapter_roots=[root],
            adapters=["tiny", "plain"],
            default_adapter="tiny",
            drift_window=WINDOW,
            drift_eval_every=10,
            drift_state_dir=state_dir,
        )
        self.backend = FakeBackend(tokenizer, sha)
        self.metrics = Metrics()
        self.dm = DriftMetrics(self.metrics.registry)

    async def __aenter__(self) -> Rig:
        await self.backend.start()
        self.registry = AdapterRegistry(self.backend, self.settings, self.metrics)
        await self.registry.open()
        self.service = ClassifyService(self.backend, self.registry, self.settings, self.metrics)
        self.monitor = DriftMonitor(self.settings, self.registry, self.dm, embedder=hash_embed)
        self.monitor.start()
        self.metrics.forget_hooks.append(self.monitor.forget)
        self.service.observers.append(self.monitor)
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.monitor.close)
        self.metrics.forget_hooks.remove(self.monitor.forget)
        await self.registry.close()

    async def feed(self, texts, batch=10, adapters=("tiny", "plain")) -> list[bool]:
        """Classify in batches; the alert flag after each batch."""
        alerts = []
        for i in range(0, len(texts), batch):
            await self.service.classify(texts[i : i + batch], list(adapters))
            assert await asyncio.to_thread(self.monitor.flush, 30)
            alerts.append(self.report()["tiny"].alert)
        return alerts

    def report(self):
        return {d.adapter: d for d in self.monitor.report()}


def test_in_distribution_quiet_shift_alerts_and_state_survives_restart(
    root, tokenizer, smollm2_base, tmp_path
):
    async def scenario():
        async with Rig(root, tokenizer, smollm2_base.sha256, tmp_path) as rig:
            rep = rig.report()
            assert rep["plain"].status == "no_reference" and rep["tiny"].status == "warming_up"
            alerts = await rig.feed(sms(200, seed=7))  # 5 windows of in-distribution traffic
            assert not any(alerts)
            tiny = rig.report()["tiny"]
            assert tiny.status == "ok" and tiny.window_texts == WINDOW and tiny.texts_seen == 200
            assert {f.feature for f in tiny.features} >= {"score", "length", "embedding"}
            assert 0.3 < tiny.prevalence.estimate < 0.7 and tiny.prevalence.low < 0.5 < tiny.prevalence.high

            # a phishing lull (1 text in 10 'urgent' instead of 1 in 2): the prevalence moves, drift does not
            alerts = await rig.feed(sms(120, seed=8, every=10))
            tiny = rig.report()["tiny"]
            assert not any(alerts) and tiny.status == "ok", [
                (f.feature, f.statistic, f.threshold) for f in tiny.features
            ]
            assert tiny.prevalence.estimate < 0.2 and tiny.prevalence.high < 0.4
            text = rig.metrics.render().decode()
            est = float(text.split('phishlens_drift_prevalence{adapter="tiny"} ')[1].split()[0])
            assert abs(est - tiny.prevalence.estimate) < 1e-9
            assert 'phishlens_drift_prevalence_high{adapter="tiny"}' in text

            seen = tiny.texts_seen
            assert (await rig.service.golden_check()).ok  # self-tests never enter the windows
            await asyncio.to_thread(rig.monitor.flush)
            assert rig.report()["tiny"].texts_seen == seen

            alerts = await rig.feed(mails(40, seed=3))
            tiny = rig.report()["tiny"]
            assert alerts[-1] and tiny.status == "drift"
            assert tiny.prevalence is not None  # drift is judged against the reference at this prevalence
            assert set(tiny.most_shifted[:4]) <= {f.feature for f in tiny.features if f.over} | {
                "score",
                "uncertainty",
            }
            assert {"length", "html", "url_count", "lines", "upper_ratio", "embedding"} & set(
                tiny.most_shifted[:4]
            )
            assert {"login", "secure", "body"} & {w.word for w in tiny.typical_live}
            text = rig.metrics.render().decode()
            assert 'phishlens_drift_alert{adapter="tiny"} 1.0' in text
            assert 'adapter="plain"' not in text.split("phishlens_drift_")[-1]  # no series without reference
            before = {f.feature: f.statistic for f in tiny.features}

        async with Rig(root, tokenizer, smollm2_base.sha256, tmp_path) as rig:  # restart: same bundle
            tiny = rig.report()["tiny"]
            assert tiny.texts_seen == seen + 40 and tiny.window_texts == WINDOW and tiny.alert
            assert np.isclose({f.feature: f.statistic for f in tiny.features}["length"], before["length"])
            await rig.registry.unload("tiny")  # unload: series gone
            assert 'adapter="tiny"' not in rig.metrics.render().decode()

        b = load_bundle(root / "tiny")  # a new bundle version (different sha256): old state is discarded
        write_manifest(root / "tiny", b.manifest.model_copy(update={"created": "2030-01-01T00:00:00Z"}))
        async with Rig(root, tokenizer, smollm2_base.sha256, tmp_path) as rig:
            tiny = rig.report()["tiny"]
            assert tiny.window_texts == 0 and tiny.texts_seen == 0 and tiny.status == "warming_up"
            await rig.feed(sms(3, seed=9), batch=3)  # fewer texts than eval_every: counts are live anyway
            tiny = rig.report()["tiny"]
            assert tiny.window_texts == 3 and tiny.texts_seen == 3 and tiny.status == "warming_up"

    asyncio.run(scenario())


def test_full_queue_drops_and_counts(root, tokenizer, smollm2_base, tmp_path):
    async def scenario():
        async with Rig(root, tokenizer, smollm2_base.sha256, tmp_path) as rig:
            gate = asyncio.Event()
            slow = rig.monitor._process

            def blocked(job):  # the worker is stuck: observe must still return at once
                asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(10)
                slow(job)

            loop = asyncio.get_running_loop()
            rig.monitor._process = blocked
            rig.monitor._queue.maxsize = 2
            for _ in range(5):
                await rig.service.classify(["lunch at noon"], ["tiny"])
            assert rig.monitor.dropped >= 2
            assert (
                "phishlens_drift_dropped_texts_total 2.0" in rig.metrics.render().decode()
                or rig.monitor.dropped > 2
            )
            gate.set()
            assert await asyncio.to_thread(rig.monitor.flush, 30)

    asyncio.run(scenario())


def test_trained_bundle_carries_a_reference(tiny_bundles):
    """`phishlens train` builds the reference from the validation rows with the real scorer and MiniLM."""
    from phishlens.explain.reference import FEATURES, ReferenceProfile

    _, phish, _ = tiny_bundles
    assert phish.manifest.extras["reference"] == "reference.json"
    prof = ReferenceProfile.load(phish.path / "reference.json")
    assert prof.n_rows == 80 and prof.embedding is not None and prof.embedding.vectors.shape[1] == 384
    assert len(prof.embedding.labels) == prof.n_style_rows >= 80
    assert set(prof.thresholds[200]) == set(FEATURES) and prof.prior.calibration == 0.5
    legit, phishing = prof.features["score"].sorted  # the planted rule: the classes score apart
    assert len(legit) + len(phishing) == 80 and np.median(legit) < np.median(phishing)
