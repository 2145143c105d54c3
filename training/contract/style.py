"""Which style a plain string is: a URL, an e-mail (raw or flattened) or an SMS.

Rules, in order (measured on the held-out rows of every corpus: README "Inputs", tests/unit/test_style.py):

1. one token without white space that starts with a scheme, ``www.`` or a host name → ``url``;
2. a block of RFC 822 header lines (``From:``, ``Received:``, ``MIME-Version:`` ...) → ``email``, parsed
   as a raw message (:func:`looks_like_rfc822`);
3. a ``Subject:`` first line (the training layout), a line break, 300 or more characters, or an e-mail
   sign-off or template placeholder (``Best regards``, ``[Your Name]``) → ``email``;
4. anything else → ``sms`` (short, one line).

A short one-line e-mail body with no greeting is indistinguishable from an SMS; send typed inputs
(``{"email": ...}``, ``{"sms": ...}``) when the style is known.
"""

from __future__ import annotations

import re
from typing import Literal

Style = Literal["email", "sms", "url"]
STYLES: tuple[Style, ...] = ("email", "sms", "url")

EMAIL_MIN_CHARS = 300  # 95 % of held-out SMS are shorter than ≈ 210 characters

_URL = re.compile(
    r"^(?:[a-z][a-z0-9+.-]{1,15}://\S+"  # scheme://...
    r"|www\.\S+"
    r"|(?:[a-z0-9](?:[a-z0-9-]{0,62})\.)+[a-z][a-z0-9-]{1,62}\.?"  # host
    r"(?::\d{1,5})?(?:[/?#]\S*)?"  # [:port][/path]
    r"|(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?:[/?#]\S*)?)$",  # IPv4[:port][/path]
    re.I,
)
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,76}):[ \t]*\S?", re.M)
_RFC822_NAMES = {
    "from",
    "to",
    "cc",
    "date",
    "received",
    "return-path",
    "message-id",
    "mime-version",
    "content-type",
    "reply-to",
    "delivered-to",
    "x-mailer",
    "sender",
    "dkim-signature",
    "authentication-results",
    "content-transfer-encoding",
    "x-original-to",
    "thread-index",
    "in-reply-to",
    "references",
}
_EMAIL_CUES = re.compile(
    r"\b(?:best regards|kind regards|warm regards|regards|sincerely|yours (?:truly|faithfully)|"
    r"thank you for your (?:attention|cooperation|prompt))\b[,.!]?\s*(?:\[[^\]]{1,40}\]|[A-Z][\w.-]*)?\s*$"
    r"|\[(?:your|recipient'?s?|company|customer) name\]",
    re.I,
)


def looks_like_rfc822(text: str) -> bool:
    """At least two header lines before the first blank line, one of them a mail transport header."""
    head = text.lstrip()[:8000].split("\n\n", 1)[0].replace("\r\n", "\n").split("\n\n", 1)[0]
    names = [m.group(1).lower() for m in _HEADER_LINE.finditer(head)]
    return len(names) >= 2 and any(n in _RFC822_NAMES for n in names)


def is_url(text: str) -> bool:
    t = text.strip()
    return 0 < len(t) <= 8192 and not any(c.isspace() for c in t) and _URL.match(t) is not None


def detect_style(text: str) -> Style:
    """The style of a plain string (rules in the module docstring)."""
    t = text.strip()
    if is_url(t):
        return "url"
    if t[:8].lower() == "subject:" or "\n" in t or len(t) >= EMAIL_MIN_CHARS or looks_like_rfc822(t):
        return "email"
    if _EMAIL_CUES.search(t):
        return "email"
    return "sms"
