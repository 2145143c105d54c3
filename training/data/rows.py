"""Raw corpus cells → `Record`s through the input pipeline: the record builders every loader uses
(training.data.corpora, training.data.corpora_extra)."""

from __future__ import annotations

from collections.abc import Iterable

from phishlens.training.contract.pipeline import PIPELINE
from phishlens.training.data.dedup import uid_for
from phishlens.training.data.records import Record

MIN_NON_SPACE = 3

_POSITIVE = {"spam", "smishing", "phishing", "1"}
_NEGATIVE = {"ham", "legit", "legitimate", "benign", "0"}


def map_label(original: str) -> str:
    o = str(original).strip().lower()
    if o in _POSITIVE:
        return "phishing"
    if o in _NEGATIVE:
        return "legitimate"
    raise ValueError(f"unknown corpus label {original!r}")


def cell(value: object) -> str:
    """A cell as text ('' for NaN/None)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _enough(text: str) -> bool:
    n = 0
    for c in text:
        if not c.isspace():
            n += 1
            if n >= MIN_NON_SPACE:
                return True
    return False


def make_record(text: str, original: object, style: str, source: str) -> Record | None:
    if not _enough(text):
        return None
    orig = str(original).strip().lower()
    return Record(
        text=text,
        label=map_label(orig),
        style=style,
        source=source,
        original_label=orig,
        uid=uid_for(text, style),
    )


def email_records(rows: Iterable[tuple[str, str, object]], source: str) -> list[Record]:
    out = []
    for subject, body, original in rows:
        r = make_record(PIPELINE.email_fields(subject, body, source), original, "email", source)
        if r is not None:
            out.append(r)
    return out


def short_records(rows: Iterable[tuple[str, object]], style: str, source: str) -> list[Record]:
    out = []
    for text, original in rows:
        r = make_record(PIPELINE.short(text, style, source), original, style, source)
        if r is not None:
            out.append(r)
    return out
