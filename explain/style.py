"""Style features of a text (DESIGN.md §6): cheap, model-free numbers whose distribution shifts when the
kind of traffic changes (an SMS model fed e-mails, a URL model fed prose).

Every feature is a pure function of the text, so the reference profile (training) and the live monitor
(server) compute exactly the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

STYLE_FEATURES: tuple[str, ...] = (
    "length",
    "url_count",
    "digit_ratio",
    "upper_ratio",
    "non_ascii_ratio",
    "html",
    "lines",
)

_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|info|biz|io|ru|cn|co|uk|de|"
    r"ly|me|xyz|top|php|html?)\b\S*",
    re.IGNORECASE,
)
_HTML = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^>]{0,200}>|&(?:nbsp|amp|lt|gt|quot|#\d{1,5});")
_WORD = re.compile(r"[a-z][a-z']{1,19}")


def style_features(text: str) -> np.ndarray:
    """[len(STYLE_FEATURES)] float64: log1p(chars), URL count, digit / uppercase-of-letters / non-ASCII
    ratios, HTML tag or entity count, line count."""
    n = len(text)
    letters = sum(c.isalpha() for c in text)
    return np.array(
        [
            np.log1p(n),  # log: lengths span 20 chars (SMS) to 100 k (e-mail); deciles are scale-free anyway
            len(_URL.findall(text)),
            sum(c.isdigit() for c in text) / max(n, 1),
            sum(c.isupper() for c in text) / max(letters, 1),
            sum(ord(c) > 127 for c in text) / max(n, 1),
            len(_HTML.findall(text)),
            text.count("\n") + 1 if text else 0,
        ],
        dtype=np.float64,
    )


def style_matrix(texts: Sequence[str]) -> np.ndarray:
    """[n_texts, len(STYLE_FEATURES)]."""
    if not texts:
        return np.zeros((0, len(STYLE_FEATURES)))
    return np.stack([style_features(t) for t in texts])


def words(text: str) -> set[str]:
    """The distinct lower-case words (2-20 letters) of a text: the unit of the "typical words" view.

    Counted once per text (document frequency), so one long message cannot dominate the view.
    """
    return set(_WORD.findall(text.lower()))
