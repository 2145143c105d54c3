"""One loader per corpus: raw files under the data root -> ``list[Record]`` (masked, laid out, labelled).

Loaders do not de-duplicate (``splits.py`` does, within and across sources) but drop texts with fewer
than 3 non-space characters. Labels: spam / smishing / phishing -> ``phishing``; ham / legit / benign
-> ``legitimate``; the corpus's own label is kept in ``original_label``.

Every text is built by the input pipeline (``phishlens.training.contract``: masking rules and the
e-mail layout ``Subject: {subject}\n\n{body}``, see docs/data.md), the same code serving applies to
what callers send. The Subject line is omitted when the corpus has no subject (Greco-LLM, both classes,
and the multi-generator LLM set), so a missing subject is not a label cue within Greco-LLM.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from phishlens.training.contract.layout import EMAIL_BODY_CAP, SUBJECT_CAP  # noqa: F401 - re-exported
from phishlens.training.data import corpora_extra as _extra
from phishlens.training.data import enron as _enron
from phishlens.training.data import link_lists as _links
from phishlens.training.data.config import REPO_ROOT
from phishlens.training.data.config import data_root as _default_root
from phishlens.training.data.records import Record
from phishlens.training.data.rows import cell, email_records, short_records

logger = logging.getLogger(__name__)


# --- e-mail -------------------------------------------------------------------------------------------
def load_email_spamassassin(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_spamassassin/spamassassin.csv")
    lab = df["label"].map({1: "spam", 0: "ham"})
    return email_records(
        ((cell(a), cell(b), c) for a, b, c in zip(df["subject"], df["body"], lab)), "email_spamassassin"
    )


def load_email_lingspam(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_lingspam/lingspam_bare.csv")
    lab = df["label"].map({1: "spam", 0: "ham"})
    return email_records(
        ((cell(a), cell(b), c) for a, b, c in zip(df["subject"], df["body"], lab)), "email_lingspam"
    )


def load_email_nazario_classic(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_nazario_classic/nazario_classic.csv")
    return email_records(
        ((cell(a), cell(b), "phishing") for a, b in zip(df["subject"], df["body"])), "email_nazario_classic"
    )


def load_email_nazario_recent(root: Path) -> list[Record]:
    # subject and body columns (not `text` = subject + body) so the layout matches the other sources.
    df = pd.read_csv(root / "raw/email_nazario_recent/nazario_recent.csv")
    return email_records(
        ((cell(a), cell(b), "phishing") for a, b in zip(df["subject"], df["body"])), "email_nazario_recent"
    )


def load_email_greco_human(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_greco2024_human_llm/human-generated_phishing.csv")
    return email_records(
        ((cell(a), cell(b), "phishing") for a, b in zip(df["subject"], df["body"])), "email_greco_human"
    )


def load_email_greco_llm(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_greco2024_human_llm/greco_llm_normalized.csv")
    lab = df["label"].map({1: "phishing", 0: "legit"})
    return email_records((("", cell(a), c) for a, c in zip(df["text"], lab)), "email_greco_llm")


MULTIGEN_FILES = ("chatgpt", "claude", "copilot", "grok")


def load_email_llm_multigen(root: Path) -> list[Record]:
    out: list[Record] = []
    for gen in MULTIGEN_FILES:
        df = pd.read_csv(root / f"raw/email_llm_phish_multigen/{gen}_generated.csv")
        lab = df["label_id"].map({1: "phishing"})
        out += email_records((("", cell(a), c) for a, c in zip(df["clean_text"], lab)), "email_llm_multigen")
    return out


# --- SMS ----------------------------------------------------------------------------------------------
def load_sms_uci(root: Path) -> list[Record]:
    """UCI SMS Spam Collection + Mishra-Soni (mostly the same messages) as ONE source.

    Mishra-Soni rows come first so that, after de-duplication (first copy kept), a message keeps
    its more specific label (smishing vs spam).
    """
    ms = pd.read_csv(root / "raw/sms_mishra_soni_smishing/Dataset_5971.csv")
    uci = pd.read_csv(
        root / "raw/sms_uci_spam_collection/SMSSpamCollection",
        sep="\t",
        header=None,
        names=["label", "text"],
        quoting=csv.QUOTE_NONE,
    )
    rows = [(cell(t), cell(lab).lower()) for t, lab in zip(ms["TEXT"], ms["LABEL"])]
    rows += [(cell(t), cell(lab).lower()) for t, lab in zip(uci["text"], uci["label"])]
    return short_records(rows, "sms", "sms_uci")


def load_sms_smishtank(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/sms_smishtank/smishtank.csv", encoding="latin-1")
    return short_records(((cell(t), "smishing") for t in df["MainText"]), "sms", "sms_smishtank")


def load_sms_exais(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/sms_exais/cleaned_all_ExAIS_SPAM_Dataset.csv")
    return short_records(
        ((cell(t), cell(lab).lower()) for t, lab in zip(df["Message"], df["Label"])), "sms", "sms_exais"
    )


# --- URL ----------------------------------------------------------------------------------------------
def load_url_phishtank_iscx(root: Path) -> list[Record]:
    d = root / "raw/url_phishtank2020_iscx2016"
    pt = pd.read_csv(d / "phishtank_online_valid_2020-05-09.csv")
    iscx = pd.read_csv(d / "iscx_url2016_benign_list_big_final.csv", header=None, names=["url"])
    rows = [(cell(u), "phishing") for u in pt["url"]] + [(cell(u), "benign") for u in iscx["url"]]
    return short_records(rows, "url", "url_phishtank_iscx")


def load_url_hannousse(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/url_hannousse2021/dataset_phishing_url_type.csv")
    return short_records(((cell(u), cell(t)) for u, t in zip(df["url"], df["type"])), "url", "url_hannousse")


# --- registry -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceInfo:
    id: str
    style: str
    loader: Callable[[Path], list[Record]]
    description: str
    labels: tuple[str, ...]  # labels the source provides ('phishing', 'legitimate')
    # Training-only additions (to widen a mix; one class, or fetched outside the data root): left out of
    # evaluation sets so the cross-domain matrix stays on the original corpora and needs no fetched file.
    supplementary: bool = False


_BOTH = ("phishing", "legitimate")
_POS = ("phishing",)

SOURCES: dict[str, SourceInfo] = {
    s.id: s
    for s in (
        SourceInfo(
            "email_spamassassin",
            "email",
            load_email_spamassassin,
            "SpamAssassin public corpus 2002-05, spam vs ham",
            _BOTH,
        ),
        SourceInfo(
            "email_lingspam",
            "email",
            load_email_lingspam,
            "Ling-Spam bare: Linguist-list ham vs spam (lower-cased, tokenised)",
            _BOTH,
        ),
        SourceInfo(
            "email_nazario_classic",
            "email",
            load_email_nazario_classic,
            "Nazario phishing corpus 2004-07 (phishing only)",
            _POS,
        ),
        SourceInfo(
            "email_nazario_recent",
            "email",
            load_email_nazario_recent,
            "Nazario phishing corpus 2023-25 (phishing only; URLs were tokens)",
            _POS,
        ),
        SourceInfo(
            "email_greco_human",
            "email",
            load_email_greco_human,
            "Greco et al. 2024 human phishing (Nazario 2019-22; phishing only)",
            _POS,
        ),
        SourceInfo(
            "email_greco_llm",
            "email",
            load_email_greco_llm,
            "Greco et al. 2024 LLM-generated phishing vs legit",
            _BOTH,
        ),
        SourceInfo(
            "email_llm_multigen",
            "email",
            load_email_llm_multigen,
            "LLM phishing from ChatGPT/Claude/Copilot/Grok (4 files; phishing only)",
            _POS,
        ),
        SourceInfo(
            "sms_uci",
            "sms",
            load_sms_uci,
            "UCI SMS Spam Collection + Mishra-Soni smishing (merged: ~86 % overlap)",
            _BOTH,
        ),
        SourceInfo(
            "sms_smishtank",
            "sms",
            load_sms_smishtank,
            "SmishTank crowd-reported smishing 2022-23 (MainText; phishing only)",
            _POS,
        ),
        SourceInfo("sms_exais", "sms", load_sms_exais, "ExAIS SMS spam vs ham (Nigeria 2014-16)", _BOTH),
        SourceInfo(
            "url_phishtank_iscx",
            "url",
            load_url_phishtank_iscx,
            "PhishTank 2020 phishing + ISCX-URL-2016 benign",
            _BOTH,
        ),
        SourceInfo(
            "url_hannousse",
            "url",
            load_url_hannousse,
            "Hannousse & Yahiouche 2021 phishing vs legitimate URLs",
            _BOTH,
        ),
        SourceInfo(
            "url_spamassassin_ham",
            "url",
            _extra.load_url_spamassassin_ham,
            "Links in SpamAssassin ham bodies, <= 3 per host (legitimate only)",
            ("legitimate",),
            supplementary=True,
        ),
        SourceInfo(
            "email_enron1",
            "email",
            _enron.load_email_enron1,
            "Enron-Spam enron1: one Enron mailbox's ham 1999-2002 + spam 2003-05 (fetched)",
            _BOTH,
            supplementary=True,
        ),
        SourceInfo(
            "url_top_sites",
            "url",
            _extra.load_url_top_sites,
            "npm top-sites 1.1.222: 500 most linked-to root domains (legitimate only)",
            ("legitimate",),
            supplementary=True,
        ),
        SourceInfo(
            "url_free_programming_books",
            "url",
            _links.load_url_free_programming_books,
            "Links of the free-programming-books lists, <= 3 per host (legitimate only, fetched)",
            ("legitimate",),
            supplementary=True,
        ),
        SourceInfo(
            "url_public_apis",
            "url",
            _links.load_url_public_apis,
            "API documentation links of the public-apis list, <= 3 per host (legitimate only, fetched)",
            ("legitimate",),
            supplementary=True,
        ),
        SourceInfo(
            "url_awesome_articles",
            "url",
            _links.load_url_awesome_articles,
            "Links of four CC0 awesome lists (articles, papers), <= 3 per host (legitimate only, fetched)",
            ("legitimate",),
            supplementary=True,
        ),
    )
}


class UnknownSource(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "unknown source"


def check_sources(ids: Iterable[str]) -> None:
    bad = [s for s in ids if s not in SOURCES]
    if bad:
        raise UnknownSource(f"unknown source id(s) {bad}; known: {sorted(SOURCES)}")


def load_source(source: str, root: Path | None = None) -> list[Record]:
    """The records of one source (masked, laid out; not de-duplicated)."""
    check_sources([source])
    return SOURCES[source].loader(Path(root) if root is not None else _default_root())


def unfetched_sources(ids: Iterable[str], root: Path | None = None) -> dict[str, str]:
    """The training-only sources among ``ids`` whose files are not fetched: id -> how to fetch them."""
    missing = {}
    for s in ids:
        if SOURCES[s].supplementary:
            try:
                load_source(s, root)
            except _extra.ExtraDataMissing as e:
                missing[s] = str(e)
    return missing


# --- on-disk cache of loaded records (masking all e-mail takes ~10 s on 2 cores) ----------------------
CACHE_ENV = "PHISHLENS_RECORD_CACHE"  # "0" disables; a path overrides <repo>/.cache/records
_CODE_FILES = (
    "data/corpora.py",
    "data/corpora_extra.py",
    "data/enron.py",
    "data/link_lists.py",
    "data/rows.py",
    "data/dedup.py",
    "data/records.py",
    "contract/masking.py",
    "contract/layout.py",
    "contract/pipeline.py",
)  # under training/


def _cache_dir() -> Path | None:
    v = os.environ.get(CACHE_ENV, "")
    if v == "0":
        return None
    return Path(v) if v else REPO_ROOT / ".cache" / "records"


def _cache_key(source: str, root: Path) -> str:
    """Changes when the data files (size, mtime) or the loading / masking code change."""
    h = hashlib.sha256(f"{source}\0{root.resolve()}".encode())
    here = Path(__file__).resolve().parents[1]  # training/
    for f in _CODE_FILES:
        h.update((here / f).read_bytes())
    for p in sorted((root / "raw").rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _cached_load(source: str, root: Path) -> list[Record]:
    cdir = _cache_dir()
    if cdir is None:
        return SOURCES[source].loader(root)
    path = cdir / f"{source}-{_cache_key(source, root)}.json.gz"
    if path.is_file():
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return [Record(*row) for row in json.load(f)]
        except (OSError, ValueError, TypeError):
            pass  # unreadable cache: rebuild
    recs = SOURCES[source].loader(root)
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        for old in cdir.glob(f"{source}-*.json.gz"):
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as f:
            json.dump([[r.text, r.label, r.style, r.source, r.original_label, r.uid] for r in recs], f)
        os.replace(tmp, path)
    except OSError:
        pass  # read-only checkout: just do without the cache
    return recs


def load_sources(sources: Iterable[str] | None = None, root: Path | None = None) -> dict[str, list[Record]]:
    """source -> records for the given sources (default: all), through the on-disk record cache.

    With the default, a supplementary source whose files were not fetched (``phishlens data fetch``) is
    left out with a warning; mixes that list it then fail with a clear error. Named sources must load.
    """
    ids = list(SOURCES) if sources is None else list(sources)
    check_sources(ids)
    root = Path(root) if root is not None else _default_root()
    out: dict[str, list[Record]] = {}
    for s in ids:
        try:
            out[s] = _cached_load(s, root)
        except _extra.ExtraDataMissing as e:
            if sources is not None:
                raise
            logger.warning("source %s left out: %s", s, e)
    return out
