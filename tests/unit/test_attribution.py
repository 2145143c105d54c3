"""explain.attribution on a real tiny model: additivity, the planted trigger, budget, dedup and batching."""

from __future__ import annotations

import numpy as np
import pytest

from phishlens.explain.attribution import Attribution, AttributionError, attribute, normalise
from phishlens.explain.render import render_html, render_terminal

TEXTS = [
    "please call the office zebra tomorrow about the budget review",
    "meeting notes draft friday   review\n\nthanks agenda zebra slides client",
    "the team project update schedule and plan for lunch",
]


@pytest.fixture(scope="module")
def zebra_scorer(tiny_llama, tiny_bundles):
    """score(texts) -> calibrated P(phishing) through the zebra-phish adapter (transformers + peft, fp32)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.server.backends.hf_backend import HFScorer
    from phishlens.server.services.classify import calibrate
    from phishlens.training.contract.prompt import PromptEncoder
    from tests.models import single_thread

    _, phish, _ = tiny_bundles
    m = phish.manifest
    tok = AutoTokenizer.from_pretrained(str(tiny_llama.path))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_llama.path), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(phish.path), is_trainable=False).eval()
    scorer = HFScorer(model, tok.pad_token_id if tok.pad_token_id is not None else 0)
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens)
    calls: list[list[str]] = []

    def score(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        with single_thread():
            prompts = [enc.encode(t).ids for t in texts]
            lps = scorer.label_logprobs(prompts, [m.label_token_ids] * len(texts), None)
        return np.array([calibrate(lp, m.calibration)[0] for lp in lps])

    score.calls = calls  # type: ignore[attr-defined]
    score.tokenizer = tok  # type: ignore[attr-defined]
    return score


@pytest.mark.parametrize("granularity", ["word", "token"])
def test_additivity_and_prediction_is_score_of_masked_text(zebra_scorer, granularity):
    for text in TEXTS:
        a = attribute(zebra_scorer, text, zebra_scorer.tokenizer, granularity=granularity, max_evals=200)
        assert isinstance(a, Attribution) and a.output_space == "probability"
        assert a.masked_text == normalise(text) and "".join(a.tokens) == a.masked_text
        assert len(a.attributions) == len(a.tokens)
        assert abs(a.base_value + sum(a.attributions) - a.prediction) <= 1e-4
        assert a.additivity_error <= 1e-4
        # the prediction is the model's score of the explained text, scored afresh
        assert np.allclose(zebra_scorer([a.masked_text])[0], a.prediction, atol=1e-5)


@pytest.mark.parametrize("granularity", ["word", "token"])
def test_planted_trigger_gets_largest_positive_attribution(zebra_scorer, granularity):
    for text in (TEXTS[0], TEXTS[1]):
        a = attribute(zebra_scorer, text, zebra_scorer.tokenizer, granularity=granularity, max_evals=300)
        assert a.prediction > 0.5, a  # the adapter learned the rule
        best = int(np.argmax(a.attributions))
        assert a.tokens[best].strip() == "zebra", a.top(3)
        assert a.attributions[best] > 0


def test_budget_dedup_and_round_batching(zebra_scorer):
    text = TEXTS[1]
    tok = zebra_scorer.tokenizer
    zebra_scorer.calls.clear()
    a = attribute(zebra_scorer, text, tok, granularity="token", max_evals=40)
    seen = [t for call in zebra_scorer.calls for t in call]
    assert a.evaluations == len(seen) == len(set(seen)) <= 40  # budget kept, nothing scored twice
    assert a.rounds == len(zebra_scorer.calls)
    assert a.additivity_error <= 1e-4

    zebra_scorer.calls.clear()
    small = attribute(zebra_scorer, text, tok, granularity="token", max_evals=300, round_nodes=5)
    big = attribute(zebra_scorer, text, tok, granularity="token", max_evals=300, round_nodes=64)
    assert big.rounds < small.rounds  # larger rounds: fewer, bigger batches to the backend
    assert max(len(c) for c in zebra_scorer.calls) > 12
    corr = np.corrcoef(small.attributions, big.attributions)[0, 1]
    assert corr > 0.95, corr


def test_full_budget_is_exact_and_deterministic(zebra_scorer):
    """With budget to expand the whole tree, the Owen values do not depend on the round size."""
    text = "call office zebra today"
    tok = zebra_scorer.tokenizer
    a = attribute(zebra_scorer, text, tok, granularity="word", max_evals=1000, round_nodes=5)
    b = attribute(zebra_scorer, text, tok, granularity="word", max_evals=1000, round_nodes=100)
    assert a.evaluations == b.evaluations < 1000
    assert np.allclose(a.attributions, b.attributions, atol=1e-9)
    assert attribute(zebra_scorer, text, tok, max_evals=1000).attributions == a.attributions


def test_edge_inputs(zebra_scorer):
    tok = zebra_scorer.tokenizer
    with pytest.raises(AttributionError):
        attribute(zebra_scorer, " \n\t ", tok)
    with pytest.raises(AttributionError):
        attribute(zebra_scorer, "hello", tok, max_evals=2)
    with pytest.raises(AttributionError):
        attribute(zebra_scorer, "hello", tok, granularity="sentence")  # type: ignore[arg-type]
    one = attribute(zebra_scorer, "zebra", tok)
    assert one.tokens == ["zebra"] and one.evaluations == 2 and one.additivity_error <= 1e-12

    def bad(texts):
        return np.full(len(texts), np.nan)

    with pytest.raises(AttributionError):
        attribute(bad, "call office zebra", tok)


def test_render_html_and_terminal(zebra_scorer):
    a = attribute(zebra_scorer, "call <b>office</b> zebra & co", zebra_scorer.tokenizer, max_evals=100)
    page = render_html(a.tokens, a.attributions, prediction=a.prediction, base_value=a.base_value)
    assert page.startswith("<!DOCTYPE html>") and "<b>office" not in page and "&lt;b&gt;office" in page
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained
    assert page.count('class="t"') == len(a.tokens)
    term = render_terminal(a.tokens, a.attributions, prediction=a.prediction, base_value=a.base_value)
    assert "\x1b[48;2;" in term and "zebra" in term
    plain = render_terminal(
        a.tokens, a.attributions, prediction=a.prediction, base_value=a.base_value, color=False
    )
    assert "\x1b" not in plain and plain.splitlines()[0] == a.masked_text
    assert "towards phishing:   'zebra'" in plain


def test_concurrent_explanations_keep_their_own_tie_breaking():
    """Two threads explaining at once used to reseed the global RNG under each other: repeated draws let
    equal (priority, draw) pairs reach heapq, which compared numpy arrays and failed. Tie-heavy scorer:
    every masked variant scores the same unless it keeps word 3. Each thread must get exactly the
    single-threaded answer."""
    import threading

    from phishlens.explain.attribution import _WhitespaceTokenizer

    text = " ".join(f"w{i}" for i in range(40))

    def score(texts):
        return np.array([0.9 if "w3 " in t else 0.1 for t in texts])

    alone = attribute(score, text, _WhitespaceTokenizer(), max_evals=200, round_nodes=2)
    results, errors = [], []

    def run():
        try:
            for _ in range(5):
                results.append(attribute(score, text, _WhitespaceTokenizer(), max_evals=200, round_nodes=2))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) == 15
    for r in results:
        assert r.attributions == alone.attributions and r.evaluations == alone.evaluations
    assert alone.tokens[int(np.argmax(alone.attributions))] == "w3 "
