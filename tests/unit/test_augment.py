"""Surface-form counterfactuals (training/data/augment.py): the words stay, only case and punctuation spacing
change; a seeded, order-independent fraction of the e-mail and SMS training rows is swapped; the bundle's
fingerprint covers the rows the fit read, and its rebuild applies the recorded recipe."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from phishlens.training.data.augment import PLACEHOLDER_RE, AugmentOptions, augment_surface, flatten
from phishlens.training.data.dedup import uid_for
from phishlens.training.data.records import Record, fingerprint, text_uid
from tests.models import planted, single_thread


def test_flatten_lowercases_and_spaces_punctuation_keeping_layout_and_placeholders():
    text = (
        "Subject: Your Account is LOCKED!\n\n"
        "Dear user, open <URL> now. Don't wait: user@example.com or example.com."
    )
    assert flatten(text) == (
        "Subject: your account is locked !\n\n"
        "dear user , open <URL> now . don ' t wait : user@example.com or example.com ."
    )
    assert flatten("WINNER!! You've won £1000") == "winner ! ! you ' ve won £ 1000"
    assert flatten("already flat , here .") == "already flat , here ."
    # a placeholder a corpus glued to a word stays whole
    assert flatten("Write to user@example.comToday") == "write to user@example.com today"


_TEXT = st.lists(
    st.sampled_from(list("aBcDeF xyZ019.,!?'£-:/\n") + ["<URL>", "user@example.com"]), max_size=80
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_flatten_keeps_the_words_and_is_idempotent(text):
    once = flatten(text)
    assert flatten(once) == once
    words = lambda t: re.findall(r"\w+", t.lower())  # noqa: E731
    # the same words, except that a placeholder glued to a word is set off from it
    assert words(once) == words(PLACEHOLDER_RE.sub(r" \g<0> ", text))
    assert once.count("<URL>") == text.count("<URL>")


def _rows(n: int) -> list[Record]:
    out = []
    for i, style in enumerate(["email", "sms", "url"] * (n // 3)):
        label = "phishing" if i % 2 else "legitimate"
        text = f"Hello Friend #{i}, Click NOW!" if style != "url" else f"https://Example{i}.com/Path?a=1"
        out.append(Record(text, label, style, f"src_{style}", label, uid_for(text, style)))  # type: ignore[arg-type]
    return out


def test_augment_swaps_a_seeded_fraction_of_email_and_sms_rows_per_class():
    rows = _rows(3000)
    assert augment_surface(rows, 0.0, ["email", "sms"], seed=13) == rows
    every = augment_surface(rows, 1.0, ["email", "sms"], seed=13)
    assert [r.text == flatten(o.text) for r, o in zip(every, rows) if o.style != "url"] == [True] * 2000
    assert [r for r in every if r.style == "url"] == [r for r in rows if r.style == "url"]  # URLs untouched
    out = augment_surface(rows, 0.3, ["email", "sms"], seed=13)
    for style in ("email", "sms"):
        for label in ("phishing", "legitimate"):
            pairs = [(o, r) for o, r in zip(rows, out) if o.style == style and o.label == label]
            swapped = [r for o, r in pairs if r.text != o.text]
            assert 0.25 <= len(swapped) / len(pairs) <= 0.35, (style, label, len(swapped))
            # a swapped row keeps its label, source and corpus label; its uid is that of its new text
            for r in swapped:
                assert (r.label, r.source, r.uid) == (label, f"src_{style}", uid_for(r.text, style))
    # stable per row: the same rows are swapped whatever the order, and another seed swaps others
    back = augment_surface(list(reversed(rows)), 0.3, ["email", "sms"], seed=13)
    assert list(reversed(back)) == out
    assert augment_surface(rows, 0.3, ["email", "sms"], seed=14) != out


def test_bad_rates_and_styles_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment_surface(_rows(3), 1.5, ["email"], seed=0)
    with pytest.raises(ValidationError):
        AugmentOptions(surface_rate=-0.1)
    with pytest.raises(ValidationError):
        AugmentOptions(surface_styles=["fax"])
    with pytest.raises(ValidationError):
        AugmentOptions.model_validate({"surface_rate": 0.3, "rate": 0.3})  # a typo is an error, not a no-op


def test_a_trained_bundle_records_the_recipe_and_fingerprints_the_rows_it_fit(tiny_llama, tmp_path):
    """Real training on a tiny random Llama: with augmentation on, the manifest's fingerprint is that of the
    augmented training rows (+ validation), and the recorded recipe rebuilds exactly those rows."""
    from phishlens.training.commands.train import TrainConfig, train_bundle

    def shouty(rows: list[Record]) -> list[Record]:  # planted rows are lower-case words: give them a surface
        return [replace(r, text=r.text.capitalize() + "!", uid=text_uid(r.uid + "!")) for r in rows]

    train, val = shouty(planted(200, seed=1)), shouty(planted(40, seed=2))
    cfg = TrainConfig(
        name="aug",
        base=str(tiny_llama.path),
        mix="planted",
        max_text_tokens=32,
        lora={"r": 4, "alpha": 8, "dropout": 0.0, "top_layers": 1},
        augment={"surface_rate": 0.5},
        fit={"lr": 5e-3, "epochs": 1.0, "batch_size": 16},
    )
    with single_thread():
        b = train_bundle(cfg, tmp_path / "aug", ["tests"], records=(train, val), progress=False, artifacts=())
    fitted = AugmentOptions.model_validate(b.manifest.metrics["train"]["config"]["augment"]).apply(train, 13)
    assert sum(f.text != t.text for f, t in zip(fitted, train)) > 50
    assert b.manifest.training_data.fingerprint == fingerprint(fitted + val)
    assert b.manifest.training_data.fingerprint != fingerprint(train + val)
