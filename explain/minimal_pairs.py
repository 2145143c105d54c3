"""Minimal pairs: edit one cue of a message, re-score, count how often the verdict flips.

Each :class:`Edit` changes exactly one thing that should not decide "phishing" on its own
(remove the URLs, change the sender, strip the HTML, swap the brand names, flatten the surface). A
model that flips its verdict often under an edit keys on that cue (a shortcut); a robust model's
verdict moves little. Only texts the edit actually changes are counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .concepts import BRAND_RE, EMAIL_ADDR_RE, HTML_RE, URL_RE

Scorer = Callable[[list[str]], np.ndarray]

_BRAND_SWAP = {
    "paypal": "Venmo",
    "apple": "Samsung",
    "amazon": "Walmart",
    "microsoft": "Oracle",
    "netflix": "Hulu",
    "google": "Yahoo",
    "bank of america": "Wells Fargo",
    "wells fargo": "Bank of America",
    "dhl": "FedEx",
    "fedex": "DHL",
    "usps": "Royal Mail",
    "royal mail": "USPS",
    "ups": "DHL",
    "yahoo": "Google",
}
_FROM_RE = re.compile(r"^(from|reply-to)\s*:.*$", re.IGNORECASE | re.MULTILINE)
_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
_ENTITY_RE = re.compile(r"&(nbsp|amp|lt|gt|quot|#\d+);", re.IGNORECASE)


def remove_urls(text: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", URL_RE.sub("", text)).strip()


def change_sender(text: str) -> str:
    """Replace sender cues (From:/Reply-To: lines, e-mail addresses) with a neutral colleague."""
    out = _FROM_RE.sub(lambda m: f"{m.group(1)}: Alex Morgan <alex.morgan@example.org>", text)
    return EMAIL_ADDR_RE.sub("alex.morgan@example.org", out)


def strip_html(text: str) -> str:
    out = _ENTITY_RE.sub(" ", text) if HTML_RE.search(text) else text
    out = _TAG_RE.sub(" ", out) if HTML_RE.search(text) else out
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def swap_brands(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        return _BRAND_SWAP.get(m.group(0).lower(), "Contoso")

    return BRAND_RE.sub(repl, text)


_SUBJECT = "Subject: "  # the e-mail layout's first line (pipeline version 1) keeps its case
_URL_TOKEN_RE = re.compile(r"<URL>")
_PUNCT_RE = re.compile(r"([^\w\s])")
_BLANKS_RE = re.compile(r"[ \t]+")


def _flat(text: str) -> str:
    t = _PUNCT_RE.sub(r" \1 ", text.lower())
    return "\n".join(_BLANKS_RE.sub(" ", line).strip() for line in t.split("\n"))


def flatten_surface(text: str, keep: re.Pattern[str] = _URL_TOKEN_RE) -> str:
    """The same words in the look of a pre-tokenised corpus (Ling-Spam, Enron-Spam): lower-case, every
    punctuation mark set off by spaces, line breaks kept. Matches of `keep` (placeholders) and a leading
    ``Subject:`` stay as they are. Idempotent."""
    head = ""
    if text.startswith(_SUBJECT):
        head, text = _SUBJECT, text[len(_SUBJECT) :]
    parts: list[str] = []
    pos = 0
    for m in keep.finditer(text):
        parts += [_flat(text[pos : m.start()]), m.group(0)]
        pos = m.end()
    parts.append(_flat(text[pos:]))
    joined = _BLANKS_RE.sub(" ", " ".join(p for p in parts if p))
    return head + re.sub(r" *\n *", "\n", joined).strip()


def _flatten_prose(text: str) -> str:
    """:func:`flatten_surface` on prose; a text without whitespace (a URL) has no surface to flatten."""
    return flatten_surface(text) if any(c.isspace() for c in text.strip()) else text


@dataclass(frozen=True)
class Edit:
    name: str
    description: str
    apply: Callable[[str], str]


EDITS: tuple[Edit, ...] = (
    Edit("remove_url", "remove every URL / link placeholder", remove_urls),
    Edit(
        "change_sender", "replace sender lines and e-mail addresses with a neutral colleague", change_sender
    ),
    Edit("strip_html", "strip HTML tags and entities", strip_html),
    Edit("swap_brand", "swap brand names for other brands", swap_brands),
    # a corpus's preparation, not its content: a verdict that moves under it keys on the source's look
    Edit("flatten_surface", "lower-case and space out punctuation, words unchanged", _flatten_prose),
)


@dataclass
class PairResult:
    """One edit over a sample: how many texts it changed, how many verdicts flipped, in which direction."""

    edit: str
    n_changed: int
    n_flipped: int
    to_legit: int  # phishing → legitimate after the edit
    to_phish: int
    mean_delta: float  # mean P(phishing) after - before, over changed texts
    examples: list[dict] = field(default_factory=list)  # a few flips (truncated texts)

    @property
    def flip_rate(self) -> float:
        return self.n_flipped / self.n_changed if self.n_changed else float("nan")

    def to_dict(self) -> dict:
        return {
            "edit": self.edit,
            "n_changed": self.n_changed,
            "n_flipped": self.n_flipped,
            "flip_rate": None if not self.n_changed else round(self.flip_rate, 4),
            "to_legitimate": self.to_legit,
            "to_phishing": self.to_phish,
            "mean_delta": round(self.mean_delta, 4),
            "examples": self.examples,
        }


def flip_rates(
    score: Scorer,
    texts: Sequence[str],
    threshold: float,
    edits: Sequence[Edit] = EDITS,
    base_scores: np.ndarray | None = None,
    n_examples: int = 2,
    max_chars: int = 160,
) -> list[PairResult]:
    """For each edit: apply it to every text, score the changed ones (one batch), count flips."""
    texts = list(texts)
    p0 = np.asarray(base_scores if base_scores is not None else score(texts), dtype=float)
    out: list[PairResult] = []
    for e in edits:
        edited = [e.apply(t) for t in texts]
        idx = [i for i, (a, b) in enumerate(zip(texts, edited)) if a != b and b.strip()]
        if not idx:
            out.append(PairResult(e.name, 0, 0, 0, 0, 0.0))
            continue
        p1 = np.asarray(score([edited[i] for i in idx]), dtype=float)
        before = p0[idx] >= threshold
        after = p1 >= threshold
        flips = np.flatnonzero(before != after)
        ex = [
            {
                "before": texts[idx[k]][:max_chars],
                "after": edited[idx[k]][:max_chars],
                "p_before": round(float(p0[idx[k]]), 3),
                "p_after": round(float(p1[k]), 3),
            }
            for k in flips[:n_examples]
        ]
        out.append(
            PairResult(
                e.name,
                len(idx),
                int(len(flips)),
                int((before & ~after).sum()),
                int((~before & after).sum()),
                float(np.mean(p1 - p0[idx])),
                ex,
            )
        )
    return out
