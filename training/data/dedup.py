"""Masking rules (re-exported from the input pipeline) and the training-only de-duplication key.

The rules live in :mod:`phishlens.training.contract.masking`, part of the versioned input pipeline that
training and serving share; this module re-exports them for the training code and adds the text
normalisation used to de-duplicate records across sources.
"""

from __future__ import annotations

import re

from phishlens.training.contract.masking import (  # noqa: F401 - re-exported for training code and tests
    _URL_CHARS,
    _URL_END,
    MASKING_RULES,
    PLACEHOLDER_DOMAIN,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_NAME,
    RULES_BY_NAME,
    URL_TOKEN,
    MaskingRule,
    mask_owner_address,
    mask_spamassassin_obfuscations,
    mask_text,
    mask_urls,
    normalise_whitespace,
    rules_for,
    strip_html,
)
from phishlens.training.data.records import text_uid

# --- de-duplication key -------------------------------------------------------------------------------
_DEDUP_URL = re.compile(rf"(?:<url>|\b(?:(?:https?|ftp)://|www\.){_URL_CHARS}*{_URL_END})", re.I)
_DEDUP_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def normalise_for_uid(text: str, style: str) -> str:
    """The text as compared for de-duplication (the uid is its sha256).

    All styles: lower-case, whitespace collapsed. E-mail/SMS: every URL -> ``<url>`` (campaign copies
    that differ only in the link are duplicates) and non-ASCII runs -> one space (mojibake differs
    between copies of the same SMS, e.g. UCI vs Mishra-Soni). URL style: also drop a trailing ``/``.
    """
    t = text.lower()
    if style == "url":
        return "".join(t.split()).rstrip("/")
    if "<url>" in t or "http" in t or "www." in t or "ftp" in t:
        t = _DEDUP_URL.sub(" <url> ", t)
    if not t.isascii():
        t = _DEDUP_NON_ASCII.sub(" ", t)
    return " ".join(t.split())


def uid_for(text: str, style: str) -> str:
    return text_uid(normalise_for_uid(text, style))
