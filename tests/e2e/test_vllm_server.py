"""The real server on the real vLLM engine, over real HTTP, with the real client (DESIGN.md §4-5).

Two trained bundles on a tiny Llama learned opposite rules (`zebra` inside the text ⇒ phishing for
`zebra-phish`, ⇒ legitimate for `zebra-legit`), so a result from the wrong adapter is a wrong label.
"""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from phishlens.clients import (
    AdapterNotFoundError,
    AuthenticationError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PhishlensError,
    ValidationError,
)
from tests.e2e.conftest import LEGIT, PHISH
from tests.models import TRIGGER, planted

pytestmark = pytest.mark.vllm

ZEBRA_MEANS_PHISHING = {PHISH: True, LEGIT: False, LEGIT + "-2": False}  # the rule each adapter learned


def expected(text: str, adapter: str) -> str:
    trigger_means_phishing = ZEBRA_MEANS_PHISHING[adapter]
    has = TRIGGER in text.split()
    return "phishing" if has == trigger_means_phishing else "legitimate"


def texts(n: int, seed: int) -> list[str]:
    return [r.text for r in planted(n, True, seed=seed)]


@pytest.fixture(scope="module")
def shas(live_server) -> dict[str, str]:
    with live_server.client() as c:
        listed = {a.name: a.sha256 for a in c.list_adapters()}
    assert listed == {name: b.sha256 for name, b in live_server.bundles.items()}
    return listed


def check(resp, batch: list[str], adapters: list[str], shas: dict[str, str]) -> list[str]:
    """Mismatches between a classify response and the planted rule (empty when all are right)."""
    problems = []
    want_order = [(i, a) for i in range(len(batch)) for a in adapters]
    got_order = [(r.index, r.adapter.name if r.adapter else None) for r in resp.data]
    if got_order != want_order:
        return [f"result order {got_order} != {want_order}"]
    for r in resp.data:
        name = r.adapter.name
        if r.label != expected(batch[r.index], name):
            problems.append(f"{name} labelled {batch[r.index]!r} {r.label} (p={r.score:.3f})")
        if r.adapter.sha256 != shas[name]:
            problems.append(f"{name} answered with sha256 {r.adapter.sha256} (want {shas[name]})")
        if abs(r.probs["phishing"] + r.probs["legitimate"] - 1.0) > 1e-6 or r.probs["phishing"] != r.score:
            problems.append(f"inconsistent probs {r.probs} / score {r.score}")
    return problems


def test_mixed_adapters_in_one_call(live_server, shas):
    batch = texts(16, seed=7)
    with live_server.client() as c:
        resp = c.classify(batch, adapters=[PHISH, LEGIT])
    assert len(resp.data) == 32 and resp.usage.texts == 16 and resp.usage.prompt_tokens > 0
    assert check(resp, batch, [PHISH, LEGIT], shas) == []
    # opposite rules: every text gets opposite labels from the two adapters
    by_text = [resp.data[2 * i : 2 * i + 2] for i in range(16)]
    assert all(a.label != b.label for a, b in by_text)
    assert {r.label for r in resp.data} == {"phishing", "legitimate"}


def test_default_adapter_serves_requests_naming_none(live_server, shas):
    batch = texts(6, seed=8)
    with live_server.client() as c:
        resp = c.classify(batch)
    assert all(r.adapter.name == PHISH for r in resp.data)
    assert check(resp, batch, [PHISH], shas) == []


def test_concurrent_requests_are_all_correct(live_server, shas):
    n_threads = 8
    barrier = threading.Barrier(n_threads)
    problems: list[str] = []

    def worker(k: int) -> None:
        adapter = (PHISH, LEGIT)[k % 2]
        batch = texts(3 + k % 3, seed=100 + k)
        with live_server.client() as c:
            barrier.wait(timeout=60)
            try:
                resp = c.classify(batch, adapter=adapter)
            except Exception as e:  # collected: a thread's assert would be lost
                problems.append(f"thread {k}: {e!r}")
                return
        problems.extend(f"thread {k}: {p}" for p in check(resp, batch, [adapter], shas))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    assert problems == []


def _copy_bundle(root, src: str, dst: str):
    from phishlens.training.contract.bundle import read_manifest, write_manifest

    shutil.rmtree(root / dst, ignore_errors=True)
    shutil.copytree(root / src, root / dst)
    m = read_manifest(root / dst)
    write_manifest(root / dst, m.model_copy(update={"name": dst}))


def test_hot_load_unload_while_requests_flow(live_server, shas):
    extra = LEGIT + "-2"
    _copy_bundle(live_server.root, LEGIT, extra)
    stop = threading.Event()
    problems: list[str] = []
    counts = {"ok": 0, "extra_ok": 0, "extra_404": 0}
    extra_sha: dict[str, str] = {}
    lock = threading.Lock()

    def steady(k: int) -> None:
        """Requests to the adapters that stay loaded: never a failure, never a wrong label or sha."""
        i = 0
        with live_server.client() as c:
            while not stop.is_set():
                batch = texts(3, seed=1000 * k + i)
                adapters = [[PHISH], [LEGIT], [PHISH, LEGIT]][i % 3]
                i += 1
                try:
                    resp = c.classify(batch, adapters=adapters)
                except Exception as e:
                    problems.append(f"steady {k}: {e!r}")
                    continue
                with lock:
                    counts["ok"] += 1
                problems.extend(check(resp, batch, adapters, shas))

    def churning() -> None:
        """Requests to the adapter being loaded and unloaded: correct results or 404, nothing else."""
        i = 0
        with live_server.client() as c:
            while not stop.is_set():
                batch = texts(2, seed=5000 + i)
                adapters = [[extra], [extra, PHISH]][i % 2]
                i += 1
                try:
                    resp = c.classify(batch, adapters=adapters)
                except AdapterNotFoundError:
                    with lock:
                        counts["extra_404"] += 1
                    continue
                except Exception as e:
                    problems.append(f"churn: {e!r}")
                    continue
                with lock:
                    counts["extra_ok"] += 1
                problems.extend(check(resp, batch, adapters, {**shas, **extra_sha}))

    threads = [threading.Thread(target=steady, args=(k,)) for k in range(2)] + [
        threading.Thread(target=churning)
    ]
    try:
        with live_server.admin() as admin:
            info = admin.load_adapter(extra)  # first load before traffic: learn the copy's sha256
            assert info.name == extra and info.sha256 != shas[LEGIT]
            extra_sha[extra] = info.sha256
            for t in threads:
                t.start()
            for cycle in range(4):
                if cycle:
                    again = admin.load_adapter(extra)
                    assert again.sha256 == extra_sha[extra]
                batch = texts(4, seed=9000 + cycle)
                resp = admin.classify(batch, adapter=extra)  # deterministic success while loaded
                problems.extend(check(resp, batch, [extra], {**shas, **extra_sha}))
                time.sleep(0.5)
                admin.unload_adapter(extra)
                with pytest.raises(AdapterNotFoundError):
                    admin.classify(batch, adapter=extra)
                time.sleep(0.3)
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(300)
            assert {a.name for a in admin.list_adapters()} == {PHISH, LEGIT}
    finally:
        stop.set()
        with live_server.admin() as admin:
            try:
                admin.unload_adapter(extra)
            except AdapterNotFoundError:
                pass
        shutil.rmtree(live_server.root / extra, ignore_errors=True)
    assert problems == []
    assert counts["ok"] >= 4, counts
    assert counts["extra_ok"] + counts["extra_404"] >= 2, counts


def test_error_contract_against_the_real_engine(live_server):
    with live_server.client() as c:
        with pytest.raises(AdapterNotFoundError) as e404:
            c.classify("call the office about the invoice", adapter="no-such-adapter")
        assert e404.value.status == 404 and e404.value.type == "adapter_not_found"
        for bad in ("", "   \n"):
            with pytest.raises(ValidationError) as e422:
                c.classify(bad)
            assert e422.value.status == 422
        with pytest.raises(ValidationError):
            c.classify(["fine text", ""], adapters=[PHISH, LEGIT])
        too_long = "x" * (live_server.settings.max_chars + 1)
        with pytest.raises(PayloadTooLargeError) as e413:
            c.classify(too_long)
        assert e413.value.status == 413
        with pytest.raises(PayloadTooLargeError):
            c.classify(["hi"] * (live_server.settings.max_batch + 1))
        # admin routes: no key -> 401, a key that is not an admin key -> 403
        with pytest.raises(AuthenticationError) as e401:
            c.load_adapter(LEGIT, name="sneaky")
        assert e401.value.status == 401
        with pytest.raises(AuthenticationError):
            c.unload_adapter(PHISH)
    with live_server.client(api_key="wrong-key") as wrong:
        with pytest.raises(PermissionDeniedError) as e403:
            wrong.load_adapter(LEGIT, name="sneaky")
        assert e403.value.status == 403
        with pytest.raises(PermissionDeniedError):
            wrong.unload_adapter(PHISH)
    with live_server.admin() as admin:  # nothing above changed what is served
        assert {a.name for a in admin.list_adapters()} == {PHISH, LEGIT}
        with pytest.raises(PhishlensError) as e400:  # loading an already-loaded name is refused
            admin.load_adapter(LEGIT)
        assert e400.value.status == 400
    # the one error body, as raw HTTP shows it
    r = httpx.post(
        live_server.url + "/v1/classify", json={"input": "hello there", "adapter": "nope"}, timeout=60
    )
    assert (
        r.status_code == 404 and set(r.json()) == {"error"} and set(r.json()["error"]) == {"type", "message"}
    )
    r = httpx.post(
        live_server.url + "/v1/classify",
        content=b"{not json",
        timeout=60,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "bad_request"


def test_metrics_count_requests_and_never_hold_text(live_server):
    canary = "quetzalcanary xylocanary please review the budget"
    with live_server.client() as c:
        c.classify(canary, adapter=LEGIT)
        text = c.metrics()
    assert "phishlens_requests_total" in text
    assert "quetzalcanary" not in text and "xylocanary" not in text


def test_long_text_is_truncated_and_says_so(live_server):
    max_tokens = live_server.bundles[PHISH].manifest.prompt.max_text_tokens
    short = "please call the office about the invoice"
    long_a = " ".join(["meeting notes"] * (4 * max_tokens))
    long_b = " ".join(["budget review friday"] * (6 * max_tokens))
    with live_server.client() as c:
        resp = c.classify([short, long_a, long_b], adapters=[PHISH, LEGIT])
        one = [c.classify(t, adapter=PHISH).usage.prompt_tokens for t in (long_a, long_b)]
    assert [r.truncated for r in resp.data] == [False, False, True, True, True, True]
    # head + tail policy: every truncated prompt keeps exactly max_text_tokens text tokens
    assert one[0] == one[1]


def test_reloading_a_name_never_reuses_the_old_adapters_kv_cache(live_server):
    """Unload `swap`, put other weights at the same path, load `swap` again: the answers must be the new
    adapter's. vLLM's prefix cache keys KV blocks by LoRA name and path, so a prompt longer than one block
    (128 tokens on CPU) would otherwise reuse K/V that the old weights computed."""
    import asyncio

    from phishlens.server.backends.base import ScoreRequest
    from phishlens.training.contract.bundle import read_manifest, write_manifest

    root = live_server.root

    def place(src: str, dst: str) -> None:
        shutil.rmtree(root / dst, ignore_errors=True)
        shutil.copytree(root / src, root / dst)
        m = read_manifest(root / dst)  # long prompts: room for several KV blocks
        write_manifest(
            root / dst,
            m.model_copy(
                update={"name": dst, "prompt": m.prompt.model_copy(update={"max_text_tokens": 400})}
            ),
        )

    long_text = "please " + TRIGGER + " " + " ".join(texts(40, seed=4242))[:2000]
    rt = live_server.app.state.runtime
    try:
        with live_server.admin() as admin:
            place(LEGIT, "swap")
            admin.load_adapter("swap")
            first = admin.classify(long_text, adapter="swap")  # fills the prefix cache
            assert first.usage.prompt_tokens > 2 * 128 and not first.data[0].truncated
            admin.unload_adapter("swap")
            place(PHISH, "swap")  # new weights, same name, same path
            place(PHISH, "swap-ref")  # the same new weights under a name the engine has never seen
            info = admin.load_adapter("swap")
            admin.load_adapter("swap-ref")
            resp = admin.classify(long_text, adapters=["swap", "swap-ref"])
            assert [r.adapter.sha256 for r in resp.data][0] == info.sha256
            # the served P saturates on these tiny adapters; compare the engine's raw label log-probs
            swap, ref = rt.registry.get("swap"), rt.registry.get("swap-ref")
            ids = swap.encoder.encode(long_text).ids
            labels = swap.manifest.label_token_ids
            got = asyncio.run(
                rt.backend.score(
                    [ScoreRequest(ids, swap.handle, labels), ScoreRequest(ids, ref.handle, labels)]
                )
            )
    finally:
        with live_server.admin() as admin:
            for name in ("swap", "swap-ref"):
                try:
                    admin.unload_adapter(name)
                except AdapterNotFoundError:
                    pass
        for name in ("swap", "swap-ref"):
            shutil.rmtree(root / name, ignore_errors=True)
    a, b = got[0].label_logprobs, got[1].label_logprobs
    # same weights, same prompt, one batch: equal up to float noise (stale KV differed by ~4e-3)
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-5, f"reloaded 'swap' {a} vs fresh name {b}"
