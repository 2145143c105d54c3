"""/v1/explain over real HTTP on a real server (tiny Llama + the planted-trigger bundles), on both engines:
the prefix-tree engine (HF replica, the default) and the vLLM backend; they must agree."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest

from tests.e2e.conftest import LEGIT, PHISH

TEXT = "please   call the office zebra tomorrow\nabout the budget review"


@contextlib.contextmanager
def explain_engine(live_server, engine: str):
    service = live_server.app.state.runtime.explain
    before, service.engine = service.engine, engine
    try:
        yield
    finally:
        service.engine = before


def tokens_metric(metrics: str, engine: str, kind: str) -> float:
    m = re.search(rf'phishlens_explain_tokens_total{{engine="{engine}",kind="{kind}"}} (\S+)', metrics)
    return float(m.group(1)) if m else 0.0


@pytest.mark.parametrize("engine", ["prefix_tree", "backend"])
def test_explain_finds_the_planted_trigger(live_server, engine):
    with explain_engine(live_server, engine), live_server.client() as c:
        for adapter, sign in ((PHISH, 1), (LEGIT, -1)):
            for granularity in ("word", "token"):
                ex = c.explain(TEXT, adapter, granularity=granularity, max_evals=200)
                assert ex.masked_text == " ".join(TEXT.split()) == "".join(ex.tokens)
                assert abs(ex.base_value + sum(ex.attributions) - ex.prediction) <= 1e-4
                assert ex.additivity_error <= 1e-4 and 0 < ex.evaluations <= 200
                top = ex.tokens[int(np.argmax(sign * np.asarray(ex.attributions)))]
                assert top.strip() == "zebra", (adapter, granularity, ex.top(3, sign))
                # the prediction is what the server serves for the explained text (either engine)
                served = c.classify(ex.masked_text, adapter=adapter).data[0].score
                assert abs(served - ex.prediction) <= 1e-4, (served, ex.prediction)
        ks = c.kserve_explain(PHISH, TEXT, max_evals=50, html=True)
        assert ks.explanations[0].html and ks.explanations[0].evaluations <= 50
        metrics = c.metrics()
    assert 'phishlens_explain_latency_seconds_count{granularity="word"}' in metrics
    prompt = tokens_metric(metrics, engine, "prompt")
    assert prompt > 0
    if engine == "prefix_tree":  # shared prefixes were run once: fewer tokens computed than scored
        assert 0 < tokens_metric(metrics, engine, "computed") < 0.8 * prompt


def test_engines_agree(live_server):
    text = "Dear user your mailbox is full, click http://mail-fix.example zebra to keep receiving mail today"
    out = {}
    for engine in ("prefix_tree", "backend"):
        with explain_engine(live_server, engine), live_server.client() as c:
            out[engine] = c.explain(text, PHISH, granularity="token", max_evals=120)
    a, b = out["prefix_tree"], out["backend"]
    assert a.tokens == b.tokens and a.evaluations == b.evaluations
    assert abs(a.prediction - b.prediction) <= 1e-4 and abs(a.base_value - b.base_value) <= 1e-4
    assert np.corrcoef(a.attributions, b.attributions)[0, 1] >= 0.999
    assert np.abs(np.asarray(a.attributions) - np.asarray(b.attributions)).max() <= 1e-3
