import json

import numpy as np
import pytest

from phishlens.training.data.records import Record, text_uid
from phishlens.training.evaluation.matrix import CrossDomainMatrix
from phishlens.training.evaluation.report import (
    EvalReport,
    eval_sets,
    evaluate_scorer,
    sort_sources,
    style_of,
)


def rec(text, label, source):
    return Record(
        text=text,
        label=label,
        style=style_of(source),
        source=source,
        original_label=label,
        uid=text_uid(text),
    )


def make_sets(n=6):
    sets = {}
    for src, labels in {
        "email_spamassassin": ("phishing", "legitimate"),
        "email_nazario_recent": ("phishing",),
        "sms_uci": ("phishing", "legitimate"),
        "sms_smishtank": ("phishing",),
        "url_hannousse": ("phishing", "legitimate"),
    }.items():
        rows = []
        for lab in labels:
            for i in range(n):
                word = "PHISH" if lab == "phishing" else "hello"
                rows.append(rec(f"{word} {src} {i}", lab, src))
        sets[src] = rows
    return sets


class CountingScorer:
    """Perfect oracle on the synthetic texts; records every text it is asked to score."""

    threshold = 0.5

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen.extend(texts)
        return np.array([0.9 if t.startswith("PHISH") else 0.1 for t in texts])


def test_perfect_scorer_layout_and_single_scoring():
    sets = make_sets()
    dup = sets["email_spamassassin"][0]
    sets["email_nazario_recent"] = sets["email_nazario_recent"] + [
        rec(dup.text, dup.label, "email_nazario_recent")
    ]
    scorer = CountingScorer()
    rep = evaluate_scorer(
        scorer, 0.5, sets, seen_sources={"email_spamassassin", "sms_uci", "sms_smishtank"}, batch_size=4
    )
    d = rep.to_dict()
    assert set(d) == {"test", "unseen", "by_source"}
    assert set(d["test"]) == {"email", "sms"}  # no seen url source
    assert d["test"]["email"]["sources"] == ["email_spamassassin"]
    assert set(d["unseen"]) == {"email_nazario_recent", "url_hannousse"}
    assert set(d["by_source"]) == set(sets)
    for m in d["by_source"].values():
        assert m["f1"] == 1.0
    assert d["test"]["sms"]["f1"] == 1.0 and d["test"]["sms"]["n"] == 18
    # every distinct text scored exactly once although one appears in two sources
    assert len(scorer.seen) == len(set(scorer.seen)) == sum(len(v) for v in sets.values()) - 1
    # style over all sources
    assert rep.style_all["email"]["n"] == 12 + 7 and rep.style_all["email"]["f1"] == 1.0
    json.dumps(d)


def test_phishing_only_source_fpr_none():
    rep = evaluate_scorer(CountingScorer(), 0.5, make_sets(), seen_sources=())
    m = rep.by_source["sms_smishtank"]
    assert m["fpr"] is None and m["roc_auc"] is None and m["f1"] == 1.0
    assert rep.test == {} and set(rep.unseen) == set(make_sets())


def test_imperfect_scores_and_bad_scorer():
    sets = make_sets()
    rep = evaluate_scorer(lambda texts: np.full(len(texts), 0.7), 0.5, sets, seen_sources={"sms_uci"})
    assert rep.by_source["sms_uci"]["fpr"] == 1.0 and rep.by_source["sms_uci"]["roc_auc"] == 0.5
    with pytest.raises(ValueError):
        evaluate_scorer(lambda texts: np.full(len(texts), 1.7), 0.5, sets, seen_sources=())
    with pytest.raises(ValueError):
        evaluate_scorer(lambda texts: np.zeros(1), 0.5, sets, seen_sources=())


class FakeSplits:
    def __init__(self, sets):
        self.by_source = {s: {"train": [], "validation": [], "test": rows} for s, rows in sets.items()}
        self.by_source["url_phishtank_iscx"] = {"train": [], "validation": [], "test": []}

    def sample(self, split, source, per_label, seed=13):
        rows = self.by_source[source][split]
        out = []
        for lab in ("phishing", "legitimate"):
            out += [r for r in rows if r.label == lab][:per_label]
        return out


def test_eval_sets_caps_and_skips_empty():
    s = eval_sets(FakeSplits(make_sets(10)), per_label=3)
    assert list(s) == sort_sources(make_sets())
    assert len(s["sms_uci"]) == 6 and len(s["sms_smishtank"]) == 3
    assert "url_phishtank_iscx" not in s


def build_matrix():
    sets = make_sets()
    mat = CrossDomainMatrix()
    mat.add(
        "specialist-sms",
        evaluate_scorer(CountingScorer(), 0.5, sets, {"sms_uci", "sms_smishtank"}),
        architecture="SmolLM2-135M",
    )

    def noisy(texts):
        return np.array([0.6 if "uci" in t or t.startswith("PHISH") else 0.2 for t in texts])

    mat.add(
        "generalist",
        evaluate_scorer(noisy, 0.5, sets, {"email_spamassassin", "sms_uci", "url_hannousse"}),
        architecture="tfidf-logreg",
        kind="tfidf",
    )
    return mat


def test_matrix_cells_and_flags():
    mat = build_matrix()
    assert mat.columns[:3] == ["email", "sms", "url"]
    assert mat.columns[3:] == sort_sources(make_sets())
    c = mat.cell("specialist-sms", "sms")
    assert c.seen == "seen" and c.value == 1.0
    assert mat.cell("specialist-sms", "email").seen == "unseen"
    assert mat.cell("generalist", "sms").seen == "partial"
    assert mat.cell("generalist", "sms_smishtank").seen == "unseen"
    assert mat.cell("generalist", "sms_uci").metrics["fpr"] == 1.0
    assert mat.values().shape == (2, 8)
    with pytest.raises(ValueError):
        mat.add("generalist", mat.rows[1].report, architecture="tfidf-logreg")


def test_markdown_has_every_row_and_column():
    mat = build_matrix()
    md = mat.to_markdown()
    for r in mat.rows:
        assert r.label in md
    header = md.splitlines()[0]
    for c in mat.columns:
        assert f" {c} " in header
    assert "1.00" in md and "*" in md and "~" in md
    assert "unseen" in md  # legend
    assert len(md.splitlines()[2].split("|")) == len(mat.columns) + 3


def test_json_roundtrip(tmp_path):
    mat = build_matrix()
    path = mat.to_json(tmp_path / "m" / "matrix.json")
    d = json.loads(path.read_text())
    assert d["columns"] == mat.columns
    assert d["rows"][0]["cells"]["email"]["seen"] == "unseen"
    assert d["rows"][1]["metrics"]["test"]["url"]["f1"] is not None
    assert d["rows"][0]["cells"]["sms_smishtank"]["metrics"]["fpr"] is None


def test_png_written(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    path = build_matrix().to_png(tmp_path / "matrix.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    assert matplotlib.get_backend() == backend  # no global backend switch


def test_report_from_dict_pools_counts():
    sets = make_sets()

    def noisy(texts):
        return np.array([0.6 if "uci" in t or t.startswith("PHISH") else 0.2 for t in texts])

    rep = evaluate_scorer(noisy, 0.5, sets, {"email_spamassassin", "sms_uci"})
    again = EvalReport.from_dict(json.loads(json.dumps(rep.to_dict())), rep.seen_sources)
    assert again.threshold == 0.5
    for style, m in rep.style_all.items():
        for k in ("f1", "precision", "recall", "fpr", "n", "n_pos", "n_neg"):
            assert (
                again.style_all[style][k] == pytest.approx(m[k])
                if m[k] is not None
                else again.style_all[style][k] is None
            )
    assert again.seen_flags() == rep.seen_flags()


def test_other_metric_views(tmp_path):
    mat = build_matrix()
    md = mat.to_markdown("fpr")
    assert md.splitlines()[-1].startswith("Cells: FPR")
    row = next(line for line in md.splitlines() if line.startswith("| generalist"))
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert cells[mat.columns.index("sms_smishtank")] == "—*"  # phishing-only: FPR undefined
    assert cells[mat.columns.index("sms_uci")] == "1.00"
    assert np.isnan(mat.values("fpr")[0, mat.columns.index("sms_smishtank")])
    assert mat.to_png(tmp_path / "fpr.png", metric="fpr").stat().st_size > 10_000
