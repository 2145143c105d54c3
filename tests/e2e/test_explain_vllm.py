"""/v1/explain over real HTTP on the real vLLM engine (tiny Llama + the planted-trigger bundles)."""

from __future__ import annotations

import numpy as np

from tests.e2e.conftest import LEGIT, PHISH

TEXT = "please   call the office zebra tomorrow\nabout the budget review"


def test_explain_finds_the_planted_trigger_through_vllm(live_server):
    with live_server.client() as c:
        for adapter, sign in ((PHISH, 1), (LEGIT, -1)):
            for granularity in ("word", "token"):
                ex = c.explain(TEXT, adapter, granularity=granularity, max_evals=200)
                assert ex.masked_text == " ".join(TEXT.split()) == "".join(ex.tokens)
                assert abs(ex.base_value + sum(ex.attributions) - ex.prediction) <= 1e-4
                assert ex.additivity_error <= 1e-4 and 0 < ex.evaluations <= 200
                top = ex.tokens[int(np.argmax(sign * np.asarray(ex.attributions)))]
                assert top.strip() == "zebra", (adapter, granularity, ex.top(3, sign))
                # the prediction is what the server serves for the explained text (batch-invariant here)
                served = c.classify(ex.masked_text, adapter=adapter).data[0].score
                assert abs(served - ex.prediction) <= 1e-4, (served, ex.prediction)
        ks = c.kserve_explain(PHISH, TEXT, max_evals=50, html=True)
        assert ks.explanations[0].html and ks.explanations[0].evaluations <= 50
        metrics = c.metrics()
    assert 'phishlens_explain_latency_seconds_count{granularity="word"}' in metrics
