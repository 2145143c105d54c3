"""Raw e-mails built with the standard library from (subject, body) rows, in the forms mail arrives in.

Each fixture says what the pipeline must make of it: ``expect`` is the (subject, body) whose training
layout the model must see (``PIPELINE.email_fields(*expect)``), ``words_only`` when HTML rendering may
move line breaks (then the words must match), or ``status`` for a request that must get that 4xx.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as POLICY

# Non-ASCII phrases each charset can encode, appended so the decoding is really exercised.
CHARSET_PHRASES = {
    "iso-8859-1": "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, d\u00e9j\u00e0 vu.",
    "windows-1252": "Prix sp\u00e9cial \u2013 \u201cseulement\u201d 5 \u20ac!",
    "shift_jis": "\u30a2\u30ab\u30a6\u30f3\u30c8\u3092\u78ba\u8a8d\u3057\u3066\u304f\u3060\u3055\u3044\u3002",
}


@dataclass(frozen=True)
class Fixture:
    name: str
    raw: bytes
    expect: tuple[str, str] | None = None  # (subject, body) whose training layout the model sees
    words_only: bool = False  # compare words (HTML rendering decides line breaks)
    status: int | None = None  # a request carrying it must get this status
    forwarded: bool = False
    attachments: tuple[str, ...] = ()  # file names the parse must list
    body_type: str = "text/plain"


def _msg(subject: str) -> EmailMessage:
    m = EmailMessage(policy=POLICY)
    m["From"] = "Sender <sender@example.org>"
    m["To"] = "recipient@example.net"
    m["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    m["Message-ID"] = "<fixture@example.org>"
    if subject:
        m["Subject"] = subject
    return m


def one_line(subject: str) -> str:
    """A corpus subject as a header can hold it (headers have no line breaks)."""
    return " ".join(subject.replace("\r", " ").replace("\n", " ").split(" ")).strip()


def to_html(body: str) -> str:
    """The body as an HTML mail: paragraphs, line breaks, links as anchors."""
    esc = html.escape(body)
    esc = re.sub(r"(https?://[^\s<>&\"]+)", r'<a href="\1">\1</a>', esc)
    paras = [p.replace("\n", "<br>\n") for p in esc.split("\n\n")]
    return (
        "<html><head><style>p { margin: 0 }</style><title>t</title></head><body>"
        + "".join(f"<p>{p}</p>\n" for p in paras)
        + "<script>track()</script></body></html>"
    )


def raw_email(subject: str, body: str, *, cte: str | None = None, charset: str = "utf-8") -> bytes:
    """A text/plain message (the form the corpus rows stand for)."""
    m = _msg(one_line(subject))
    kw = {"charset": charset}
    if cte:
        kw["cte"] = cte
    m.set_content(body, **kw)
    return m.as_bytes()


def fixtures(subject: str, body: str, phish_subject: str, phish_body: str, big: bool = True) -> list[Fixture]:
    subj = one_line(subject)
    out = [Fixture("plain", raw_email(subj, body), (subj, body))]

    m = _msg(subj)
    m.set_content(body)
    m.add_alternative(to_html(body), subtype="html")
    out.append(Fixture("multipart_alternative", m.as_bytes(), (subj, body)))

    m = _msg(subj)
    m.set_content(to_html(body), subtype="html")
    out.append(Fixture("html_only", m.as_bytes(), (subj, body), words_only=True, body_type="text/html"))

    out.append(Fixture("base64", raw_email(subj, body, cte="base64"), (subj, body)))
    out.append(Fixture("quoted_printable", raw_email(subj, body, cte="quoted-printable"), (subj, body)))

    for charset, phrase in CHARSET_PHRASES.items():
        text = f"{body}\n\n{phrase}"
        if not _encodable(text, charset) or not _encodable(subj, charset):
            text, s2 = f"{_ascii(body)}\n\n{phrase}", _ascii(subj)
        else:
            s2 = subj
        m = _msg(s2)
        m.set_content(
            text.encode(charset), maintype="text", subtype="plain", cte="8bit", params={"charset": charset}
        )
        out.append(Fixture(f"charset_{charset}", m.as_bytes(), (s2, text)))

    # a multipart whose declared boundary never occurs (the parts use another one)
    m = _msg(subj)
    m.set_content(body)
    m.add_alternative(to_html(body), subtype="html")
    raw = m.as_bytes()
    declared = m.get_boundary().encode()
    broken = raw.replace(b'boundary="' + declared + b'"', b'boundary="not-the-boundary-used"', 1)
    out.append(Fixture("broken_boundary", broken, (subj, body)))

    # a benign mail forwarding a phishing mail as an attachment (message/rfc822)
    inner = _msg(one_line(phish_subject))
    inner.set_content(phish_body)
    outer = _msg("Fwd: " + one_line(phish_subject))
    outer.set_content("Hi team,\n\nI got this one this morning, forwarding it as you asked.\n\nThanks")
    outer.add_attachment(inner)
    out.append(Fixture("forwarded_phishing", outer.as_bytes(), None, forwarded=True))

    m = _msg(subj)
    m.set_content(body)
    m.add_attachment(b"%PDF-1.4 fixture", maintype="application", subtype="pdf", filename="invoice.pdf")
    out.append(Fixture("small_attachment", m.as_bytes(), (subj, body), attachments=("invoice.pdf",)))

    if not big:
        return out
    m = _msg(subj)
    m.set_content(body)
    m.add_attachment(b"\0" * (20 * 1024 * 1024), maintype="application", subtype="zip", filename="big.zip")
    out.append(Fixture("attachment_20mb", m.as_bytes(), None, status=413))
    return out


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
        return True
    except UnicodeEncodeError:
        return False


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def capture_raw_rows(data_root, sources=None) -> dict[str, list]:
    """source → [(raw fields, text the loader built from them)], captured from the loaders themselves (same
    rows, same order, same code path as training). Raw fields: (subject, body, label) for e-mail sources,
    (text, label) for SMS and URL sources."""
    import pytest

    from phishlens.training.data import corpora, corpora_extra, enron, link_lists, rows

    captured: dict[str, list] = {}
    mp = pytest.MonkeyPatch()
    real_emails, real_short, real_record = rows.email_records, rows.short_records, rows.make_record
    built: list = []

    def record(text, original, style, source):
        built.append(text)
        return real_record(text, original, style, source)

    def emails(rows, source):
        rows = list(rows)
        built.clear()
        recs = real_emails(rows, source)
        captured.setdefault(source, []).extend(zip(rows, list(built)))
        return recs

    def short(rows, style, source):
        rows = list(rows)
        built.clear()
        recs = real_short(rows, style, source)
        captured.setdefault(source, []).extend(zip(rows, list(built)))
        return recs

    mp.setattr(corpora, "email_records", emails)  # the loaders' own names for the record builders
    mp.setattr(corpora, "short_records", short)
    mp.setattr(corpora_extra, "short_records", short)
    mp.setattr(link_lists, "short_records", short)
    mp.setattr(enron, "email_records", emails)
    mp.setattr(rows, "make_record", record)
    try:
        for sid, info in corpora.SOURCES.items():
            if sources is not None and sid not in sources:
                continue
            if sid == "url_top_sites":  # not in the shared data root (fetched from npm)
                continue
            try:
                info.loader(data_root)
            except corpora_extra.ExtraDataMissing:  # a fetched corpus (email_enron1, link lists) not fetched
                continue
    finally:
        mp.undo()
    return captured
