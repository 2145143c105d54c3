"""Heuristic concepts of a message, used as probe targets and as minimal-pair edits.

Each concept is a cheap, explainable rule over the text (no model): whether it carries a URL,
urgency wording, HTML markup, sender cues (a From:/Subject: header, an e-mail address, a
greeting to an anonymous customer) or a brand name. Probes then ask whether a layer *encodes*
the concept; a concept that is more decodable than the label is a shortcut candidate.
"""

from __future__ import annotations

import re
from collections.abc import Callable

URL_RE = re.compile(
    r"(<URL>|https?://\S+|www\.\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|info|biz|ru|cn|in|io|co|ly|me|xyz|top|online|site|uk|de)\b(?:/\S*)?)",
    re.IGNORECASE,
)
URGENCY_RE = re.compile(
    r"\b(urgent(?:ly)?|immediate(?:ly)?|act now|right away|as soon as possible|asap|expire[sd]?|"
    r"suspend(?:ed)?|locked|verify|within \d+ (?:hours?|days?)|final (?:notice|warning)|"
    r"last chance|limited time|action required|warning|alert)\b",
    re.IGNORECASE,
)
HTML_RE = re.compile(
    r"</?(?:html|body|div|span|table|tr|td|p|br|a|font|img|b|i|center|head|style)\b[^<>]*>|&nbsp;|&amp;",
    re.IGNORECASE,
)
EMAIL_ADDR_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|<EMAIL>")
SENDER_RE = re.compile(
    r"^(?:from|subject|to|reply-to)\s*:|\bdear (?:customer|client|user|member|sir|madam|valued)\b",
    re.IGNORECASE | re.MULTILINE,
)
BRANDS = (
    "paypal",
    "apple",
    "amazon",
    "microsoft",
    "netflix",
    "google",
    "facebook",
    "ebay",
    "wells fargo",
    "bank of america",
    "chase",
    "citibank",
    "hsbc",
    "dhl",
    "usps",
    "fedex",
    "ups",
    "irs",
    "hmrc",
    "visa",
    "mastercard",
    "outlook",
    "office 365",
    "dropbox",
    "docusign",
    "instagram",
    "whatsapp",
    "linkedin",
    "yahoo",
    "icloud",
    "barclays",
    "santander",
    "royal mail",
    "coinbase",
    "binance",
)
BRAND_RE = re.compile(r"\b(" + "|".join(re.escape(b) for b in BRANDS) + r")\b", re.IGNORECASE)


def has_url(text: str) -> bool:
    return URL_RE.search(text) is not None


def has_urgency(text: str) -> bool:
    return URGENCY_RE.search(text) is not None


def has_html(text: str) -> bool:
    return HTML_RE.search(text) is not None


def has_sender_cue(text: str) -> bool:
    return SENDER_RE.search(text) is not None or EMAIL_ADDR_RE.search(text) is not None


def has_brand(text: str) -> bool:
    return BRAND_RE.search(text) is not None


CONCEPTS: dict[str, Callable[[str], bool]] = {
    "has_url": has_url,
    "urgency": has_urgency,
    "html": has_html,
    "sender_cue": has_sender_cue,
    "brand": has_brand,
}
"""Concept name → rule. Probe names for concepts are ``concept.<name>``."""


def concept_labels(texts: list[str]) -> dict[str, list[int]]:
    """Concept name → 0/1 per text."""
    return {name: [int(rule(t)) for t in texts] for name, rule in CONCEPTS.items()}
