"""Style routing and the OOD flag on the real server (`python -m phishlens.server.main`, vLLM, SmolLM2, the
shipped `default`, `specialist-sms`, `specialist-url`, PHISHLENS_ROUTES sms/url → the specialists).

* A batch of mixed styles under `adapter: "auto"` comes back in input order, each text answered by its
  style's adapter, with exactly the score that adapter gives when named directly (≤ 1e-5: one vLLM batch
  with per-prompt LoRA adapters vs one adapter per call).
* Every result carries `ood`; real unseen-style text (e-mails and SMS to the URL specialist) is flagged far
  more often than its own style, and in-distribution rows are mostly unflagged.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import require_vllm, smollm2_server

pytestmark = [pytest.mark.vllm, pytest.mark.data, pytest.mark.slow]  # a SmolLM2 vLLM server: minutes


@pytest.fixture(scope="module")
def server(smollm2_base, tmp_path_factory) -> str:
    require_vllm()
    with smollm2_server(
        tmp_path_factory.mktemp("phishlens-routing-server"),
        PHISHLENS_ADAPTERS="default,specialist-sms,specialist-url",
        PHISHLENS_ROUTES="sms=specialist-sms,url=specialist-url",
        PHISHLENS_FEEDBACK_STATE_DIR="",
    ) as url:
        yield url


def classify(url, items, **kw) -> list[dict]:
    r = httpx.post(f"{url}/v1/classify", json={"input": items, **kw}, timeout=600)
    assert r.status_code == 200, r.text[:500]
    return r.json()["data"]


def test_mixed_batch_is_routed_in_order_with_each_adapters_own_score(server, splits):
    rows = []
    for source in ("email_spamassassin", "sms_uci", "url_phishtank_iscx"):
        rows += [r.text for r in splits.sample("test", source, per_label=2, seed=11)]
    texts = rows[::3] + rows[1::3] + rows[2::3]  # interleave the styles
    routed = classify(server, texts, adapter="auto")
    assert [r["index"] for r in routed] == list(range(len(texts)))
    want = {"email": "default", "sms": "specialist-sms", "url": "specialist-url"}
    assert all(r["adapter"]["name"] == want[r["style"]] for r in routed)
    assert {r["adapter"]["name"] for r in routed} == set(want.values())
    for name in want.values():
        idx = [i for i, r in enumerate(routed) if r["adapter"]["name"] == name]
        direct = classify(server, [texts[i] for i in idx], adapter=name)
        for i, d in zip(idx, direct):
            assert abs(d["score"] - routed[i]["score"]) <= 1e-5 and d["label"] == routed[i]["label"]
            assert d["adapter"] == routed[i]["adapter"]
            assert d["ood"]["flagged"] == routed[i]["ood"]["flagged"]


def test_ood_flag_separates_styles_the_adapter_never_saw(server, splits):
    urls = [r.text for r in splits.sample("test", "url_phishtank_iscx", per_label=15, seed=12)]
    other = [
        r.text
        for s in ("sms_uci", "email_spamassassin")
        for r in splits.sample("test", s, per_label=8, seed=12)
    ]
    own = classify(server, urls, adapter="specialist-url")
    foreign = classify(server, other, adapter="specialist-url")
    own_share, foreign_share = (sum(r["ood"]["flagged"] for r in rs) / len(rs) for rs in (own, foreign))
    assert own_share <= 0.2 and foreign_share >= 0.6, (own_share, foreign_share)
    assert all(0 < r["ood"]["threshold"] < 2 for r in own + foreign)
