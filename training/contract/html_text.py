"""HTML → plain text for e-mail bodies that have no text/plain alternative (stdlib ``html.parser``).

It renders what a mail client shows, the way the corpus parses did (docs/data.md, "HTML handling"):
script / style / head / template content and comments dropped, block elements on their own lines,
table cells separated by spaces, images by their alt text, and each link as ``anchor [href]`` so the
masking rules turn it into ``anchor <URL>`` exactly as in the training corpora. Entities are decoded by
the parser. The parser never raises on broken markup; the work is linear in the input size.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_HIDDEN = {"script", "style", "head", "title", "template", "noscript", "xml"}
_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "tfoot",
    "thead",
    "tr",
    "ul",
}
_CELL = {"td", "th"}
_LINK_SCHEMES = ("http://", "https://", "ftp://", "www.", "mailto:")
_SPACE = re.compile(r"\s+")


class _Renderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0  # depth inside elements whose content is never shown
        self.hidden_stack: list[str] = []
        self.links: list[tuple[str, int]] = []  # (href, len(out) when the <a> opened)
        self.pre = 0  # inside <pre>: source line breaks are visible

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden_stack.append(tag)
            self.hidden += 1
            return
        if self.hidden:
            return
        if tag == "pre":
            self.pre += 1
        if tag in _BLOCK:
            self.out.append("\n")
        elif tag in _CELL:
            self.out.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f" {alt} ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            self.links.append((href, len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            return  # <script/> and the like have no content
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if tag in self.hidden_stack:
                while self.hidden_stack:  # close up to the matching opener (tolerates bad nesting)
                    self.hidden -= 1
                    if self.hidden_stack.pop() == tag:
                        break
            return
        if self.hidden:
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _BLOCK:
            self.out.append("\n")
        elif tag in _CELL:
            self.out.append(" ")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            anchor = "".join(self.out[start:]).strip()
            if href.lower().startswith(_LINK_SCHEMES) and href != anchor:
                self.out.append(f" [{href}]")

    def handle_data(self, data: str) -> None:
        if not self.hidden:  # outside <pre>, HTML shows any run of white space as one space
            self.out.append(data if self.pre else _SPACE.sub(" ", data))


def html_to_text(markup: str) -> str:
    """The visible text of an HTML document or fragment (whitespace is left to the masking rules)."""
    r = _Renderer()
    r.feed(markup)
    r.close()
    return "".join(r.out)
