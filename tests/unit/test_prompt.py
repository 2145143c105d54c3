"""Prompt encoding (DESIGN.md §4): head+tail truncation at token level, template and label checks,
and a prefix that is the same token sequence for every text (prefix caching relies on it)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from phishlens.training.contract.bundle import PromptSpec
from phishlens.training.contract.prompt import (
    DEFAULT_TEMPLATE,
    STYLE_WORDS,
    PromptEncoder,
    PromptError,
    label_token_ids,
)
from phishlens.training.contract.style import detect_style

LONG = " ".join(f"word{i} lorem ipsum {i * 7}" for i in range(60))  # a few hundred tokens, no repeats


@pytest.mark.parametrize(
    ("max_tokens", "head_fraction", "head", "tail"),
    [(10, 0.5, 5, 5), (11, 0.5, 6, 5), (10, 0.3, 3, 7), (10, 1.0, 10, 0), (10, 0.0, 0, 10)],
)
def test_truncation_keeps_exact_head_and_tail(tokenizer, max_tokens, head_fraction, head, tail):
    enc = PromptEncoder(tokenizer, max_text_tokens=max_tokens, head_fraction=head_fraction)
    text_ids = tokenizer.encode(LONG, add_special_tokens=False)
    assert len(text_ids) > 100
    e = enc.encode(LONG)
    kept = text_ids[:head] + (text_ids[len(text_ids) - tail :] if tail else [])
    assert e.ids == enc.prefix_ids + kept + enc.suffix_ids
    assert e.truncated is True
    assert e.n_text_tokens == max_tokens == len(kept)
    assert e.n_text_tokens_in == len(text_ids)
    assert len(e.ids) == len(enc.prefix_ids) + max_tokens + len(enc.suffix_ids)


def test_short_and_exact_length_texts_are_not_truncated(tokenizer):
    text = "please verify your account now"
    n = len(tokenizer.encode(text, add_special_tokens=False))
    for limit in (n, n + 5):
        e = PromptEncoder(tokenizer, max_text_tokens=limit).encode(text)
        assert (e.truncated, e.n_text_tokens, e.n_text_tokens_in) == (False, n, n)
        # Untruncated, the ids decode back to exactly the filled template.
        assert tokenizer.decode(e.ids, skip_special_tokens=True) == DEFAULT_TEMPLATE.replace("{text}", text)
    e = PromptEncoder(tokenizer, max_text_tokens=n - 1).encode(text)
    assert (e.truncated, e.n_text_tokens, e.n_text_tokens_in) == (True, n - 1, n)


def test_empty_text(tokenizer):
    enc = PromptEncoder(tokenizer)
    e = enc.encode("")
    assert e.ids == enc.prefix_ids + enc.suffix_ids and not e.truncated and e.n_text_tokens == 0


@pytest.mark.parametrize("template", ["no slot at all", "{text} and again {text}"])
def test_template_needs_exactly_one_slot(tokenizer, template):
    with pytest.raises(PromptError, match=r"exactly once"):
        PromptEncoder(tokenizer, template=template)
    with pytest.raises(ValidationError, match=r"exactly once"):
        PromptSpec(template=template, max_text_tokens=16)


def test_max_text_tokens_lower_bound(tokenizer):
    with pytest.raises(PromptError, match=">= 2"):
        PromptEncoder(tokenizer, max_text_tokens=1)


def test_label_words(tokenizer):
    ids = label_token_ids(tokenizer, (" phishing", " legit"))
    assert len(ids) == 2 and ids[0] != ids[1]
    assert [tokenizer.decode([i]) for i in ids] == [" phishing", " legit"]
    with pytest.raises(PromptError, match=r"' phishingly-suspicious' is \d+ tokens .* need exactly 1"):
        label_token_ids(tokenizer, (" phishingly-suspicious", " legit"))
    with pytest.raises(PromptError, match="map to the same token"):
        label_token_ids(tokenizer, (" legit", " legit"))


def test_prefix_is_identical_across_texts(tokenizer):
    enc = PromptEncoder(tokenizer, max_text_tokens=64)
    texts = ["hi", "Hello!", " leading space", "\nnewline first", "URGENT: verify http://x.co now", LONG, ""]
    n = len(enc.prefix_ids)
    assert n > 5
    encoded = enc.encode_many(texts)
    for t, e in zip(texts, encoded):
        assert e.ids[:n] == enc.prefix_ids, t
        assert e.ids[len(e.ids) - len(enc.suffix_ids) :] == enc.suffix_ids, t
    # and it is the tokenisation of the template's text before the slot
    prefix_text = DEFAULT_TEMPLATE.split("{text}")[0]
    assert tokenizer.decode(enc.prefix_ids, skip_special_tokens=True) == prefix_text


STYLED = "Decide whether the {style} below is phishing or legit.\n{text}\nAnswer:"
STYLED_TEXTS = {
    "url": "https://github.com/pytorch/pytorch/issues",
    "sms": "Your parcel is waiting, confirm delivery at dpd-track.co today",
    "email": "Subject: Quarterly report\n\nHi all, the figures are attached. Best regards, Ann",
}


@pytest.mark.parametrize("style", ["email", "sms", "url"])
def test_style_slot_is_filled_with_the_detected_style(tokenizer, style):
    enc = PromptEncoder(tokenizer, template=STYLED, max_text_tokens=64)
    text = STYLED_TEXTS[style]
    want = STYLED.replace("{style}", STYLE_WORDS[style]).replace("{text}", text)
    assert tokenizer.decode(enc.encode(text).ids, skip_special_tokens=True) == want
    # detection is the serving pipeline's own rule, so a plain-string request gets the same prompt
    assert enc.encode(text).ids == enc.encode(text, detect_style(text)).ids


def test_declared_style_overrides_detection(tokenizer):
    enc = PromptEncoder(tokenizer, template=STYLED, max_text_tokens=64)
    text = STYLED_TEXTS["sms"]
    as_email = enc.encode(text, "email")
    decoded = tokenizer.decode(as_email.ids, skip_special_tokens=True)
    assert decoded.startswith("Decide whether the e-mail below")
    assert as_email.ids != enc.encode(text).ids
    # one style for a batch (the masked variants of one input keep the input's style)
    variants = [text, text.replace("parcel", ""), "today"]
    batch = enc.encode_many(variants, "email")
    assert [e.ids for e in batch] == [enc.encode(t, "email").ids for t in variants]
    assert enc.frame("today") == enc.frame("anything short", "sms") != enc.frame("today", "url")


def test_template_without_style_slot_ignores_the_style(tokenizer):
    enc = PromptEncoder(tokenizer, max_text_tokens=64)
    text = STYLED_TEXTS["sms"]
    assert not enc.names_style
    assert enc.encode(text, "url").ids == enc.encode(text).ids == enc.encode(text, "email").ids


def test_style_slot_at_most_once(tokenizer):
    template = "{style} or {style}: {text}"
    with pytest.raises(PromptError, match=r"at most once"):
        PromptEncoder(tokenizer, template=template)
    with pytest.raises(ValidationError, match=r"at most once"):
        PromptSpec(template=template, max_text_tokens=16)
    assert PromptSpec(template=STYLED, max_text_tokens=16).template == STYLED
