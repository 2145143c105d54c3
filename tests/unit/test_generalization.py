"""The unseen-source protocol: balanced per-style sets, nested thresholds, the report."""

import json

import numpy as np
import pytest

from phishlens.training.data.mixes import MixSpec
from phishlens.training.data.records import Record, text_uid
from phishlens.training.data.splits import make_splits
from phishlens.training.evaluation.generalization import (
    GeneralizationReport,
    ModelResult,
    evaluate_unseen,
    held_out_of,
    nested_thresholds,
    report_sets,
    unseen_sets,
)
from phishlens.training.evaluation.report import style_of


def rec(text, label, source):
    return Record(
        text=text,
        label=label,
        style=style_of(source),
        source=source,
        original_label=label,
        uid=text_uid(text),
    )


def synthetic_splits(n=40):
    rows = []
    for src, labels in {
        "email_lingspam": ("phishing", "legitimate"),
        "email_nazario_recent": ("phishing",),
        "email_spamassassin": ("phishing", "legitimate"),  # trained on: must never appear
        "sms_exais": ("phishing", "legitimate"),
        "url_hannousse": ("phishing", "legitimate"),
    }.items():
        for lab in labels:
            word = "PHISH" if lab == "phishing" else "hello"
            rows += [rec(f"{word} {src} {i}", lab, src) for i in range(n)]
    return make_splits(rows)


HELD = ["email_lingspam", "email_nazario_recent", "sms_exais", "url_hannousse"]


def test_sets_are_balanced_spread_over_sources_and_only_held_out():
    sets = unseen_sets(synthetic_splits(), HELD, per_label=30)
    assert set(sets) == {"email", "sms", "url"}
    for us in sets.values():
        labels = [r.label for r in us.records]
        assert labels.count("phishing") == labels.count("legitimate") == 30
        assert all(r.source in HELD for r in us.records)
    email = report_sets(sets)["email"]
    # phishing spread evenly over the two held-out e-mail sources; legitimate only from Ling-Spam
    ph = [r for r in sets["email"].records if r.label == "phishing"]
    assert sum(r.source == "email_nazario_recent" for r in ph) == 15
    assert email == {"email_lingspam": 45, "email_nazario_recent": 15}
    # every split of a held-out source is used (40 rows per label > the 32 of the train split alone)
    assert len(unseen_sets(synthetic_splits(), HELD, per_label=40)["sms"].records) == 80


def test_sets_are_deterministic_and_skip_a_style_without_both_labels():
    a = unseen_sets(synthetic_splits(), HELD, per_label=10)
    b = unseen_sets(synthetic_splits(), HELD, per_label=10)
    assert [r.uid for r in a["url"].records] == [r.uid for r in b["url"].records]
    only_phish = unseen_sets(synthetic_splits(), ["email_nazario_recent", "sms_exais"], per_label=10)
    assert set(only_phish) == {"sms"}


def test_nested_threshold_never_uses_the_styles_own_rows():
    p = {
        "email": np.array([0.9, 0.8, 0.2, 0.1]),
        "sms": np.array([0.35, 0.3, 0.25, 0.2]),
        "url": np.array([0.7, 0.6, 0.55, 0.5]),
    }
    y = {s: np.array([1, 1, 0, 0]) for s in p}
    t = nested_thresholds(p, y)
    assert set(t) == {"email", "sms", "url"}
    # sms's own best cut is 0.275; chosen on e-mail + url rows it must separate those instead
    assert not 0.25 < t["sms"] <= 0.30
    t_email_only_others = nested_thresholds(
        {"sms": p["sms"], "url": p["url"]}, {"sms": y["sms"], "url": y["url"]}
    )
    assert t_email_only_others["url"] == pytest.approx(0.275)  # the sms rows' best cut


class Oracle:
    """Right on phishing; calls legitimate URLs phishing (the failure the benchmark must expose)."""

    threshold = 0.5

    def __call__(self, texts):
        return np.array([0.9 if t.startswith("PHISH") or "url_" in t else 0.1 for t in texts])


def test_evaluate_reports_fpr_per_style_and_source_and_macro(tmp_path):
    sets = unseen_sets(synthetic_splits(), HELD, per_label=20)
    res = evaluate_unseen(Oracle(), 0.5, sets, name="oracle", kind="lora", architecture="test")
    assert res.styles["email"]["served"]["f1"] == pytest.approx(1.0)
    assert res.styles["url"]["served"]["fpr"] == pytest.approx(1.0)
    assert res.styles["url"]["served"]["f1"] == pytest.approx(2 / 3)
    assert res.sources["email_nazario_recent"]["served"]["n_neg"] == 0
    assert res.macro_f1("served") == pytest.approx((1 + 1 + 2 / 3) / 3)
    assert res.max_fpr("served") == pytest.approx(1.0)
    rep = GeneralizationReport(
        per_label=20,
        seed=13,
        held_out=HELD,
        set_sizes=report_sets(sets),
        models=[res],
        command="phishlens evaluate x --protocol unseen",
    )
    rep.to_json(tmp_path / "g.json")
    d = json.loads((tmp_path / "g.json").read_text())
    assert d["models"][0]["macro_f1"]["served"] == pytest.approx(res.macro_f1("served"))
    md = rep.to_markdown()
    assert "| oracle [test] |" in md and "phishlens evaluate x --protocol unseen" in md
    assert rep.to_png(tmp_path / "g.png").stat().st_size > 1000


def test_held_out_of_several_mixes_is_the_intersection_minus_trained():
    a = MixSpec(
        "a", ("email_spamassassin", "sms_uci"), ("email_lingspam", "sms_exais", "url_hannousse"), 10, 2
    )
    b = MixSpec("b", ("url_phishtank_iscx", "sms_exais"), ("email_lingspam", "url_hannousse"), 10, 2)
    assert held_out_of([a, b]) == ["email_lingspam", "url_hannousse"]


def test_router_sends_each_text_to_its_detected_styles_model_at_that_models_threshold():
    from phishlens.training.evaluation.generalization import route_scores

    sets = unseen_sets(synthetic_splits(), HELD, per_label=10)
    # the "email" model says 0.6 for everything (threshold 0.7: legitimate); the others 0.6 at threshold 0.5
    flat = {style: np.full(len(us.records), 0.6) for style, us in sets.items()}
    routes = {"email": (flat, 0.7), "sms": (flat, 0.5), "url": (flat, 0.5)}
    detected = {"email": "email", "sms": "sms", "url": "url"}
    p = route_scores(sets, routes, lambda text: detected[text.split()[1].split("_")[0]])
    assert np.all(p["email"] < 0.5) and np.all(p["sms"] >= 0.5) and np.all(p["url"] >= 0.5)
    # a style with no route falls back to the first route
    p2 = route_scores(sets, {"sms": (flat, 0.5)}, lambda text: "email")
    assert np.all(p2["url"] >= 0.5)


def test_supplementary_sources_stay_out_of_the_evaluation_sets():
    from phishlens.training.evaluation.report import eval_sets

    rows = [rec(f"https://site{i}.example/", "legitimate", "url_top_sites") for i in range(20)]
    rows += [
        rec(f"PHISH url_hannousse {i}", lab, "url_hannousse") for i in range(20) for lab in ("phishing",)
    ]
    rows += [rec(f"hello url_hannousse {i}", "legitimate", "url_hannousse") for i in range(20)]
    sets = eval_sets(make_splits(rows), per_label=5)
    assert list(sets) == ["url_hannousse"]


def test_ood_table_compares_accuracy_of_flagged_and_unflagged_texts(tmp_path):
    from phishlens.training.evaluation.generalization import ood_accuracy, score_sets

    sets = unseen_sets(synthetic_splits(), HELD, per_label=20)
    p = score_sets(Oracle(), sets)
    res = evaluate_unseen(Oracle(), 0.5, sets, name="oracle", kind="lora", architecture="test")
    # flag exactly the texts the oracle gets wrong on URLs (every legitimate one), nothing elsewhere
    flags = {
        st: np.array([st == "url" and r.label == "legitimate" for r in us.records]) for st, us in sets.items()
    }
    res.ood = ood_accuracy(p, 0.5, flags, sets, ood_threshold=0.9, flag_rate=0.05)
    url = res.ood["url"]
    assert url["flagged"] == {"n": 20, "accuracy": 0.0} and url["unflagged"] == {"n": 20, "accuracy": 1.0}
    assert res.ood["sms"]["flagged"] == {"n": 0, "accuracy": None} and res.ood["sms"]["unflagged"]["n"] == 40
    rep = GeneralizationReport(
        per_label=20, seed=13, held_out=HELD, set_sizes=report_sets(sets), models=[res]
    )
    md = rep.to_markdown()
    assert "## Out-of-distribution flag" in md and "| oracle | 0 / – | 40 / 1.00 |" in md
    assert "20 / 0.00 | 20 / 1.00 |" in md
    assert (
        json.loads(rep.to_json(tmp_path / "g.json").read_text())["models"][0]["ood"]["url"]["threshold"]
        == 0.9
    )


def _style_result(name: str, f1: dict[str, float], info: dict | None = None) -> ModelResult:
    styles = {
        s: {k: {"f1": v, "precision": v, "recall": v, "fpr": 0.1} for k in ("served", "nested")}
        for s, v in f1.items()
    }
    return ModelResult(name, "lora", "test", 0.5, {}, styles, {}, info or {})


def test_generalist_or_routed_is_chosen_per_style_on_the_other_styles_only(tmp_path):
    """The session-13 numbers: routed wins e-mail and SMS on their own rows, but each style's choice is made
    on the other two, so e-mail and SMS get the generalist (it wins on the rows that chose) and URLs the
    router."""
    from phishlens.training.evaluation.generalization import nested_choice

    gen = _style_result("default", {"email": 0.83, "sms": 0.73, "url": 0.82})
    routed = _style_result(
        "routed-specialists",
        {"email": 0.87, "sms": 0.74, "url": 0.75},
        {"routes": "x", "generalist": "default"},
    )
    choice = nested_choice(gen, routed)
    assert choice == {
        "email": ("default", 0.83),
        "sms": ("default", 0.73),
        "url": ("routed-specialists", 0.75),
    }
    # a router that is better everywhere is chosen everywhere; ties go to the generalist
    assert {
        n for n, _ in nested_choice(gen, _style_result("r", {"email": 0.9, "sms": 0.8, "url": 0.9})).values()
    } == {"r"}
    assert {n for n, _ in nested_choice(gen, gen).values()} == {"default"}
    rep = GeneralizationReport(per_label=20, seed=13, held_out=HELD, set_sizes={}, models=[gen, routed])
    md = rep.to_markdown()
    assert "## Generalist or routed, chosen per style on the other styles (nested)" in md
    assert (
        "| default or routed-specialists | 0.83 (default) | 0.73 (default) | 0.75 (routed-specialists) "
        "| **0.77** |" in md
    )
    d = json.loads(rep.to_json(tmp_path / "g.json").read_text())
    assert d["choices"][0]["per_style"]["url"] == {"model": "routed-specialists", "f1": 0.75}
    # no router row naming a generalist: no section
    assert "Generalist or routed" not in GeneralizationReport(20, 13, HELD, {}, [gen]).to_markdown()
