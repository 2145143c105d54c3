"""Every loader on the real data: counts close to MANIFEST's de-dup numbers, labels, layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from phishlens.training.data.config import DataRootMissing
from phishlens.training.data.config import data_root as resolve_root
from phishlens.training.data.corpora import SOURCES, UnknownSource, load_source
from phishlens.training.data.splits import DEDUP_PRIORITY, dedup_records

# source -> (phishing, legitimate) after masking + within-source de-dup (MANIFEST's dedup counts, merged
# where sources are merged). Our normalisation is coarser (case, whitespace, URLs), so allow some slack.
EXPECTED = {
    "email_spamassassin": (1812, 4108),
    "email_lingspam": (468, 2408),
    "email_nazario_classic": (3496, 0),
    "email_nazario_recent": (1192, 0),
    "email_greco_human": (504, 0),
    "email_greco_llm": (1000, 998),
    "email_llm_multigen": (1129, 0),
    # UCI (653 / 4,518) + Mishra-Soni messages not in UCI under our normalisation (~400 / ~500)
    "sms_uci": (1059, 5039),
    "sms_smishtank": (1059, 0),
    "sms_exais": (1476, 2433),
    "url_phishtank_iscx": (14855, 35378),
    "url_hannousse": (5714, 5715),
    # supplementary legitimate URLs (training/data/corpora_extra.py); top-sites is fetched from npm
    "url_spamassassin_ham": (0, 3102),
    # Enron-Spam enron1 (training/data/enron.py), fetched from a pinned GitHub commit
    "email_enron1": (1462, 3432),
    "url_top_sites": (0, 500),
    # curated public link lists (training/data/link_lists.py), fetched from pinned GitHub commits
    "url_free_programming_books": (0, 4596),
    "url_public_apis": (0, 1563),
    "url_awesome_articles": (0, 587),
}


def test_registry_ids_and_priority():
    assert list(SOURCES) == list(EXPECTED)
    assert set(DEDUP_PRIORITY) == set(SOURCES)
    with pytest.raises(UnknownSource, match="unknown source"):
        load_source("email_nope", Path("/nonexistent"))


def test_data_root_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PHISHLENS_DATA_ROOT", str(tmp_path / "absent"))
    with pytest.raises(DataRootMissing, match="PHISHLENS_DATA_ROOT"):
        resolve_root()
    monkeypatch.setenv("PHISHLENS_DATA_ROOT", str(tmp_path))
    (tmp_path / "raw").mkdir()
    assert resolve_root() == tmp_path.resolve()


@pytest.fixture(scope="module")
def loaded(data_root):
    from phishlens.training.data.corpora import load_sources

    return load_sources(None, data_root)


@pytest.mark.data
@pytest.mark.parametrize("source", list(EXPECTED))
def test_loader_counts_labels_and_fields(loaded, source):
    if source not in loaded:
        pytest.skip(f"{source} is not fetched (phishlens data fetch --only {source}; docs/data.md)")
    recs = loaded[source]
    info = SOURCES[source]
    assert recs and all(r.source == source and r.style == info.style for r in recs)
    uniq: dict[str, str] = {}
    for r in recs:
        uniq.setdefault(r.uid, r.label)
        assert r.label in ("phishing", "legitimate") and r.original_label
        assert len(r.text.strip()) >= 3 and len(r.uid) == 64
    n_pos = sum(1 for v in uniq.values() if v == "phishing")
    n_neg = sum(1 for v in uniq.values() if v == "legitimate")
    exp_pos, exp_neg = EXPECTED[source]
    assert set(info.labels) == ({"phishing"} if exp_pos else set()) | ({"legitimate"} if exp_neg else set())
    for got, exp in ((n_pos, exp_pos), (n_neg, exp_neg)):
        assert (got == 0) == (exp == 0)
        assert abs(got - exp) <= 0.12 * exp + 10, (source, n_pos, n_neg, EXPECTED[source])


@pytest.mark.data
def test_email_layout(loaded):
    for src in loaded:  # a supplementary source that was not fetched is not in `loaded`
        if SOURCES[src].style != "email":
            continue
        for r in loaded[src]:
            assert len(r.text) <= 4000 + 320
    # no sender line from the corpora that have senders (multigen texts contain "From:" in the body)
    for src in ("email_spamassassin", "email_nazario_classic", "email_greco_human"):
        assert not any(r.text.startswith("From:") for r in loaded[src])
    assert all(r.text.startswith("Subject: ") for r in loaded["email_spamassassin"][:200])
    assert not any(r.text.startswith("Subject:") for r in loaded["email_greco_llm"])


@pytest.mark.data
def test_original_labels(loaded):
    assert {r.original_label for r in loaded["sms_uci"]} == {"ham", "spam", "smishing"}
    assert {r.original_label for r in loaded["sms_exais"]} == {"ham", "spam"}
    assert {r.original_label for r in loaded["url_phishtank_iscx"]} == {"phishing", "benign"}
    assert {r.original_label for r in loaded["email_greco_llm"]} == {"phishing", "legit"}


@pytest.mark.data
def test_dedup_stats_consistent(loaded):
    out, stats = dedup_records(loaded)
    assert len(out) == sum(stats.rows_out.values())
    assert len({r.uid for r in out}) == len(out)
    for s in loaded:
        assert stats.rows_in[s] == (
            stats.rows_out[s] + stats.within_source[s] + stats.cross_source[s] + stats.label_conflict[s]
        )


def test_ham_links_are_cleaned_capped_per_host_and_in_file_order():
    from phishlens.training.data.corpora_extra import ham_links

    bodies = [
        "see http://lists.example.org/a. and (http://lists.example.org/b)",
        "http://lists.example.org/c http://lists.example.org/d https://news.example.co.uk/x?y=1,",
        "mail me at zzzz@spamassassin.taint.org http://spamassassin.taint.org/ http://localhost/x "
        "http://61/ http://lists.example.org/a http://www.monkey.org/~kra/",
    ]
    assert ham_links(bodies, per_host=3) == [
        "http://lists.example.org/a",
        "http://lists.example.org/b",
        "http://lists.example.org/c",
        "https://news.example.co.uk/x?y=1",
    ]


def test_top_sites_needs_its_pinned_tarball(monkeypatch, tmp_path):
    from phishlens.training.data import corpora_extra as X

    monkeypatch.setenv(X.EXTRA_DATA_ENV, str(tmp_path))
    with pytest.raises(X.ExtraDataMissing, match="phishlens data fetch"):
        X.load_url_top_sites(tmp_path)
    (tmp_path / X.TOP_SITES_FILE).write_bytes(b"not the tarball")
    with pytest.raises(ValueError, match="sha256"):
        X.load_url_top_sites(tmp_path)
