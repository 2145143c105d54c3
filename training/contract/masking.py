"""Masking and text normalisation: remove corpus artefacts a classifier could use as shortcuts.

Part of the input pipeline (``phishlens.training.contract.pipeline``, version 1): training builds every
record through these rules and serving applies the same ones, so nothing else rewrites text.

Every rule is a :class:`MaskingRule` (name, regex pattern, replacement, reason, scope) in the ordered
list :data:`MASKING_RULES`; :func:`mask_text` applies the rules in scope for a (style, source) in that
order. docs/data.md lists the same rules with their reasons.

Decisions (see docs/data.md for the long form):

* **HTML.** The e-mail CSVs are already text; only Nazario 2023-25 (and a few Nazario 2004-07 / Greco
  rows) still carry raw tags, CSS or entities. Every e-mail text goes through the same HTML clean-up
  (script/style/comments dropped, block tags -> newline, other known tags dropped, entities unescaped),
  so "has leftover HTML" cannot identify a source. SpamAssassin's ``body_format`` column is NOT given to
  the model; its HTML-derived spam bodies (49 % of spam vs 3 % of ham) remain a known confound.
* **URLs in e-mail: one representation, the token ``<URL>``.** Nazario 2023-25 replaced every URL with
  the bare word ``URL``; our own parses render links as ``[http://...]``; Greco-LLM uses markdown
  ``[here](https://...)``; Ling-Spam tokenises URLs as ``http : / / www . x . com``. Each form names its
  corpus (and the ``[...]`` form mostly marks HTML-derived spam). Only replacing every e-mail URL by one
  token removes all four artefacts; URL content is the URL models' job. Serving applies the same
  rules through the pipeline (with no source, so only the source-independent rules run). SMS and URL
  texts keep their URLs (no source-specific URL rendering there).
* **Owner / obfuscated addresses** become neutral placeholders (``user@example.com``, ``example.com``,
  ``user``) in every e-mail source, so the placeholder itself never identifies a corpus.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

URL_TOKEN = "<URL>"
PLACEHOLDER_EMAIL = "user@example.com"
PLACEHOLDER_DOMAIN = "example.com"
PLACEHOLDER_NAME = "user"

Replacement = str | Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class MaskingRule:
    """One regex substitution with its reason and scope.

    ``styles``: the styles it applies to; ``sources``: restrict to these source ids (None = every
    source of those styles, and also texts of unknown source, e.g. at serving time).
    """

    name: str
    pattern: str
    replacement: Replacement
    reason: str
    styles: tuple[str, ...] = ("email",)
    sources: tuple[str, ...] | None = None
    flags: int = 0
    needs: tuple[str, ...] = ()  # fast path: skip unless one of these (lower-case) substrings occurs
    _rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rx", re.compile(self.pattern, self.flags))

    def applies_to(self, style: str, source: str | None) -> bool:
        if style not in self.styles:
            return False
        return self.sources is None or (source is not None and source in self.sources)

    def apply(self, text: str) -> str:
        if self.needs:
            low = text.lower()
            if not any(n in low for n in self.needs):
                return text
        return self._rx.sub(self.replacement, text)


def _unescape_entity(m: re.Match[str]) -> str:
    # `&amp;nbsp;` (double-escaped) -> `&nbsp;` -> nbsp: unescape the innermost entity
    return html.unescape("&" + m.group(1))


_HTML_TAGS = (
    "a|abbr|address|area|b|base|basefont|bdo|big|blink|blockquote|body|br|button|caption|center|cite|code|"
    "col|colgroup|dd|del|dfn|dir|div|dl|dt|em|fieldset|font|form|frame|frameset|h[1-6]|head|header|footer|"
    "hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|map|marquee|meta|nobr|noscript|o:p|object|ol|"
    "optgroup|option|p|param|pre|q|s|samp|section|select|small|span|strike|strong|sub|sup|tbody|td|"
    "textarea|tfoot|th|thead|title|tr|tt|u|ul|var|wbr|v:[a-z]+|o:[a-z]+|w:[a-z]+|xml|center|table|nav|"
    "article|main|picture|source|svg|path|g|rect|figure|figcaption"
)
_BLOCK_TAGS = "br|p|div|tr|li|h[1-6]|table|hr|blockquote|ul|ol|title|section|header|footer|article"

_URL_CHARS = r"[^\s<>\"'\[\](){}]"
_URL_END = r"[^\s<>\"'\[\](){}.,;:!?]"

MASKING_RULES: tuple[MaskingRule, ...] = (
    # --- HTML (every e-mail source, same treatment) -------------------------------------------
    MaskingRule(
        "html_script_style",
        r"<\s*(script|style|head)\b[^>]*>.*?(?:<\s*/\s*\1\s*>|\Z)",
        " ",
        "Script/style/head content is never visible text; leftover CSS marks Nazario-recent's HTML parse.",
        flags=re.I | re.S,
    ),
    MaskingRule(
        "html_comments",
        r"<!--.*?(?:-->|\Z)",
        " ",
        "HTML comments (conditional comments, editor markers) are source artefacts, not message text.",
        flags=re.S,
    ),
    MaskingRule(
        "html_block_tags",
        rf"</?(?:{_BLOCK_TAGS})\b(?:\s[^<>]{{0,2000}})?/?\s*>",
        "\n",
        "Block-level tags separate lines in the rendered mail: keep the line break, drop the tag.",
        flags=re.I,
    ),
    MaskingRule(
        "html_tags",
        rf"</?(?:{_HTML_TAGS})(?:\s[^<>]{{0,2000}})?/?\s*(?:>|\Z)",
        " ",
        "Raw tags survive only in some sources (Nazario 2023-25, a few Nazario/Greco rows): a shortcut.",
        flags=re.I,
    ),
    MaskingRule(
        "css_rules",
        r"(?<![\w:#.-])(?:[#.]?[\w:-]+\s*,\s*)*[#.]?[\w:-]+\s*\{[^{}<>]*:[^{}<>]*\}",
        " ",
        "CSS remnants (`a:link { color: ... }`) in pre-extracted Nazario 2004-07 and Nazario 2023-25 texts.",
        needs=("{",),
    ),
    MaskingRule(
        "html_entities",
        r"&(?:amp;)*(#\d{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[a-zA-Z][a-zA-Z0-9]{1,7};?)",
        _unescape_entity,
        "Nazario 2023-25 keeps `&nbsp;`, `&#65279;`, `&shy;` ...; "
        "other sources were unescaped at parse time.",
        needs=("&",),
    ),
    MaskingRule(
        "invisible_chars",
        "[\u00ad\u200b-\u200f\u2060\ufeff]",
        "",
        "Zero-width / soft-hyphen characters (HTML parse leftovers, BOMs) are invisible noise.",
        styles=("email", "sms", "url"),
    ),
    # --- corpus owner / obfuscated addresses (every e-mail source) ------------------------------
    MaskingRule(
        "nazario_owner_address",
        r"jose\s*@\s*monkey\s*\.\s*org",
        PLACEHOLDER_EMAIL,
        "jose@monkey.org is the Nazario corpus recipient (~64 % of Nazario 2023-25, ~57 % of Greco human).",
        flags=re.I,
        needs=("monkey",),
    ),
    MaskingRule(
        "nazario_owner_domain",
        r"monkey\s*\.\s*org",
        PLACEHOLDER_DOMAIN,
        "monkey.org (the Nazario recipient's domain) appears in 'Your monkey.org account...' lures, "
        "often glued to neighbouring words by the HTML parse (Regardsmonkey.org, monkey.orgTo), "
        "so no word boundaries.",
        flags=re.I,
        needs=("monkey",),
    ),
    MaskingRule(
        "nazario_owner_name",
        r"\b[Jj][Oo][Ss][Ee](?![a-z\u00e0-\u00ff])",
        PLACEHOLDER_NAME,
        "'Dear jose' greetings name the Nazario recipient; also glued forms (joseThe), not Josephine.",
        needs=("jose",),
    ),
    MaskingRule(
        "nazario_classic_placeholder",
        r"\busername\s*@\s*domain\s*\.\s*com\b",
        PLACEHOLDER_EMAIL,
        "Nazario 2004-07 replaced the recipient by username@domain.com: one placeholder for all sources.",
        flags=re.I,
        needs=("username",),
    ),
    MaskingRule(
        "spamassassin_obfuscated_address",
        r"[\w.+-]*(?:zzzz|yyyy)[\w.+-]*@[\w-]+(?:\.[\w-]+)*",
        PLACEHOLDER_EMAIL,
        "SpamAssassin obfuscated recipients as zzzz@/yyyy@...: a SpamAssassin-only token.",
        flags=re.I,
        needs=("zzzz", "yyyy"),
    ),
    MaskingRule(
        "spamassassin_taint_domain",
        r"\b[\w.-]*taint\.org\b",
        PLACEHOLDER_DOMAIN,
        "spamassassin.taint.org / iiu.taint.org (list hosts of the corpus) "
        "occur in ~6 % of SpamAssassin ham.",
        flags=re.I,
        needs=("taint.org",),
    ),
    MaskingRule(
        "spamassassin_obfuscated_word",
        r"\b\w*(?:zzzz|yyyy)\w*\b",
        PLACEHOLDER_NAME,
        "Remaining zzzz/yyyy obfuscations (zzzzteana, yyyy) identify SpamAssassin.",
        flags=re.I,
        needs=("zzzz", "yyyy"),
    ),
    # --- URLs in e-mail: one token for every rendering -------------------------------------------
    MaskingRule(
        "markdown_links",
        r"\[([^\[\]\n]{0,200})\]\(\s*(?:https?|ftp)://[^)\s]*\s*\)",
        r"\1 " + URL_TOKEN,
        "Greco-LLM writes links as markdown [here](https://...): keep the anchor text, mask the URL.",
        needs=("](",),
    ),
    MaskingRule(
        "bracketed_urls",
        r"\[\s*(?:(?:https?|ftp)://|www\.|mailto:)[^\[\]\s]*\s*\]",
        URL_TOKEN,
        "Our mail parser renders <a href> as [http://...]: mostly HTML-derived spam/phishing (a shortcut).",
        flags=re.I,
    ),
    MaskingRule(
        "lingspam_tokenised_urls",
        r"\b(?:https?|ftp) : / / [\w-]+(?: (?:\.|/|_|-|~|\?|=|&|%|#|:) [\w-]+)*(?: /)?",
        URL_TOKEN,
        "Ling-Spam tokenised URLs (`http : / / www . x . com`); same token as every other e-mail URL.",
        sources=("email_lingspam",),
        flags=re.I,
        needs=(" : / / ",),
    ),
    MaskingRule(
        "urls",
        rf"\b(?:(?:https?|ftp)://|www\.){_URL_CHARS}*{_URL_END}",
        URL_TOKEN,
        "One URL representation across e-mail sources (Nazario 2023-25 has only the token `URL`).",
        flags=re.I,
    ),
    MaskingRule(
        "nazario_recent_url_token",
        r"\bURL\b",
        URL_TOKEN,
        "Nazario 2023-25 replaced every URL by the bare word URL: map it to the shared token.",
        sources=("email_nazario_recent",),
        needs=("url",),
    ),
    # --- whitespace (every style) ----------------------------------------------------------------
    MaskingRule(
        "line_endings",
        r"\r\n?",
        "\n",
        "CRLF / CR line ends differ by parser (Greco human has \\r): one convention.",
        styles=("email", "sms", "url"),
    ),
    MaskingRule(
        "horizontal_whitespace",
        "[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]*"
        "[\t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
        "[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]*| {2,}",
        " ",
        "Runs of spaces/tabs/nbsp (ExAIS padding, HTML indentation) carry no content.",
        styles=("email", "sms", "url"),
    ),
    MaskingRule(
        "space_around_newlines",
        r" +\n *|\n +",
        "\n",
        "Trailing / leading spaces on lines are layout noise.",
        styles=("email", "sms", "url"),
    ),
    MaskingRule(
        "blank_lines",
        r"\n{3,}",
        "\n\n",
        "At most one blank line: HTML-derived texts otherwise show long blank runs (a format shortcut).",
        styles=("email", "sms", "url"),
    ),
)

RULES_BY_NAME: dict[str, MaskingRule] = {r.name: r for r in MASKING_RULES}


def rules_for(style: str, source: str | None = None) -> list[MaskingRule]:
    """The rules applied to a text of this style (and source), in order."""
    return [r for r in MASKING_RULES if r.applies_to(style, source)]


def _apply(names: tuple[str, ...], text: str) -> str:
    for n in names:
        text = RULES_BY_NAME[n].apply(text)
    return text


# Small named entry points (groups of rules), handy on their own and in tests.
def strip_html(text: str) -> str:
    """Drop script/style/comments/tags and CSS remnants, unescape entities."""
    return _apply(
        ("html_script_style", "html_comments", "html_block_tags", "html_tags", "css_rules", "html_entities"),
        text,
    )


def mask_owner_address(text: str) -> str:
    """Nazario recipient (jose@monkey.org, monkey.org, jose, username@domain.com) -> placeholders."""
    return _apply(
        (
            "nazario_owner_address",
            "nazario_owner_domain",
            "nazario_owner_name",
            "nazario_classic_placeholder",
        ),
        text,
    )


def mask_spamassassin_obfuscations(text: str) -> str:
    """zzzz@/yyyy@ addresses, *.taint.org hosts, leftover zzzz/yyyy words -> placeholders."""
    return _apply(
        ("spamassassin_obfuscated_address", "spamassassin_taint_domain", "spamassassin_obfuscated_word"), text
    )


def mask_urls(text: str, source: str | None = None) -> str:
    """Every e-mail URL rendering -> ``<URL>`` (source-specific forms only for that source)."""
    for n in (
        "markdown_links",
        "bracketed_urls",
        "lingspam_tokenised_urls",
        "urls",
        "nazario_recent_url_token",
    ):
        rule = RULES_BY_NAME[n]
        if rule.sources is None or (source is not None and source in rule.sources):
            text = rule.apply(text)
    return text


def normalise_whitespace(text: str) -> str:
    """One line-end convention, single spaces, at most one blank line, stripped."""
    text = _apply(
        ("invisible_chars", "line_endings", "horizontal_whitespace", "space_around_newlines", "blank_lines"),
        text,
    )
    return text.strip()


def mask_text(text: str, style: str, source: str | None = None) -> str:
    """Apply every rule in scope for (style, source) in :data:`MASKING_RULES` order, then strip.

    With ``source=None`` (serving) only the source-independent rules run.
    """
    for rule in MASKING_RULES:
        if rule.applies_to(style, source):
            text = rule.apply(text)
    return text.strip()
