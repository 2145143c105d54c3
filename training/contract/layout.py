"""The text layout the adapters were trained on (pipeline version 1): caps and the e-mail layout.

E-mail layout (every e-mail source and every served e-mail)::

    Subject: {subject}

    {body}

No ``From:`` line anywhere (only some corpora have senders, so a From line would name the corpus). The
Subject line is omitted when there is no subject. Subjects are one line of at most :data:`SUBJECT_CAP`
characters; bodies are masked on their first :data:`RAW_PREFIX` characters, then capped at
:data:`EMAIL_BODY_CAP` characters (cut at a word boundary when one is near).
"""

from __future__ import annotations

from .masking import mask_text

EMAIL_BODY_CAP = 4000
SUBJECT_CAP = 300
SUBJECT_RAW_PREFIX = 2000  # characters of a raw subject masked before the cap
RAW_PREFIX = 20_000  # characters of a raw body masked before the cap (HTML shrinks a lot)


def cap(text: str, limit: int) -> str:
    """At most `limit` characters, ending on a word boundary when one lies in the last 200."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sp = cut.rfind(" ", limit - 200)
    return (cut[:sp] if sp > 0 else cut).rstrip()


def email_text(subject: str, body: str, source: str | None = None) -> str:
    """Mask subject and body separately and lay them out (subject on one line, body capped).

    `source` (a corpus id) turns on that corpus's own rules at training time; serving passes None.
    """
    subj = mask_text(subject[:SUBJECT_RAW_PREFIX], "email", source).replace("\n", " ")
    subj = cap(subj, SUBJECT_CAP)
    body = cap(mask_text(body[:RAW_PREFIX], "email", source), EMAIL_BODY_CAP)
    if subj and body:
        return f"Subject: {subj}\n\n{body}"
    if subj:
        return f"Subject: {subj}"
    return body


def short_text(text: str, style: str, source: str | None = None) -> str:
    """An SMS or URL as the model sees it (invisible characters dropped, whitespace normalised)."""
    return mask_text(text, style, source)
