"""Minimal pairs: each edit changes only its cue, and flip rates expose a planted URL shortcut."""

from __future__ import annotations

import random

import numpy as np
import pytest

from phishlens.explain.minimal_pairs import (
    EDITS,
    change_sender,
    flatten_surface,
    flip_rates,
    remove_urls,
    strip_html,
    swap_brands,
)
from phishlens.training.data.records import Record, text_uid
from tests.models import WORDS, single_thread

LINK = "http://secure-login.com/verify"


def test_edits_touch_only_their_cue():
    assert remove_urls(f"click {LINK} now") == "click now"
    assert remove_urls("see <URL> today") == "see today"
    assert strip_html("<html><b>Hi</b>&nbsp;there</html>") == "Hi there"
    assert strip_html("a < b and c > d") == "a < b and c > d"  # no markup: unchanged
    assert "jose@monkey.org" not in change_sender("From: Jose <jose@monkey.org>\nhello")
    assert change_sender("lunch at noon") == "lunch at noon"
    assert swap_brands("Your PayPal account") == "Your Venmo account"
    assert swap_brands("lunch at noon") == "lunch at noon"
    assert flatten_surface("Subject: Hi Bob!\n\nSee <URL>, OK?") == "Subject: hi bob !\n\nsee <URL> , ok ?"
    assert flatten_surface("lunch at noon") == "lunch at noon"
    flat = next(e for e in EDITS if e.name == "flatten_surface")
    assert flat.apply("https://Example.com/a?b=1") == "https://Example.com/a?b=1"  # a URL is not prose
    assert flat.apply("Call NOW!") == "call now !"


def test_flip_rates_count_only_changed_texts():
    def score(texts):  # a pure shortcut: phishing iff a link is present
        return np.array([0.95 if ("http" in t or "<URL>" in t) else 0.05 for t in texts])

    texts = [f"pay now {LINK}", "hello there", "see <URL>", "Your PayPal bill"]
    res = {r.edit: r for r in flip_rates(score, texts, 0.5)}
    assert (
        res["remove_url"].n_changed == 2
        and res["remove_url"].n_flipped == 2
        and res["remove_url"].to_legit == 2
    )
    assert res["swap_brand"].n_changed == 1 and res["swap_brand"].n_flipped == 0
    assert res["strip_html"].n_changed == 0 and np.isnan(res["strip_html"].flip_rate)
    # "see <URL>" and "hello there" are already flat; the other two keep their link (or none): no flip
    assert res["flatten_surface"].n_changed == 2 and res["flatten_surface"].n_flipped == 0
    assert res["remove_url"].examples and res["remove_url"].examples[0]["p_after"] < 0.5


def _rows(n: int, seed: int) -> list[Record]:
    """Phishing rows carry a link, legitimate rows never do; brand names appear in both (no signal)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 10))]
        if rng.random() < 0.4:
            words.insert(rng.randint(0, len(words)), "paypal")
        y = i % 2
        if y:
            words.insert(rng.randint(1, len(words)), LINK)
        text = " ".join(words)
        label = "phishing" if y else "legitimate"
        out.append(Record(text, label, "sms", "synthetic", label, text_uid(f"{seed}:{i}:{text}")))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def url_shortcut_bundle(tiny_llama, tmp_path_factory):
    from phishlens.training.commands.train import TrainConfig, train_bundle

    cfg = TrainConfig(
        name="url-shortcut",
        base=str(tiny_llama.path),
        mix="planted",
        max_text_tokens=48,
        lora={"r": 8, "alpha": 16, "dropout": 0.0, "top_layers": 2},
        fit={"lr": 5e-3, "epochs": 5.0, "batch_size": 16},
        seed=13,
    )
    with single_thread():
        return train_bundle(
            cfg,
            tmp_path_factory.mktemp("pairs") / "url-shortcut",
            ["tests"],
            records=(_rows(320, 0), _rows(64, 1)),
            eval_sets={"sms_uci": _rows(64, 2)},
            seen_sources=["sms_uci"],
            progress=False,
            artifacts=(),
        )


def test_planted_url_shortcut_is_detected(url_shortcut_bundle):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phishlens.explain.logit_lens import sigmoid
    from phishlens.server.backends.hf_backend import HFScorer
    from phishlens.training.contract.prompt import PromptEncoder

    b = url_shortcut_bundle
    m = b.manifest
    tok = AutoTokenizer.from_pretrained(m.base_model.ref)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(m.base_model.ref), str(b.path)
    ).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens)

    def score(texts):
        lp = HFScorer(model, 0).label_logprobs(
            [enc.encode(t).ids for t in texts], [m.label_token_ids] * len(texts), None
        )
        return sigmoid(np.array([a - c for a, c in lp]) / m.calibration.temperature)

    rows = _rows(60, 3)
    with single_thread():
        p = score([r.text for r in rows])
        assert ((p >= m.calibration.threshold) == np.array([r.y == 1 for r in rows])).mean() >= 0.9
        res = {
            r.edit: r
            for r in flip_rates(score, [r.text for r in rows], m.calibration.threshold, EDITS, base_scores=p)
        }
    url, brand = res["remove_url"], res["swap_brand"]
    assert url.n_changed == 30 and url.flip_rate >= 0.8 and url.to_legit >= 0.8 * url.n_changed
    assert brand.n_changed > 5 and brand.flip_rate <= 0.15
