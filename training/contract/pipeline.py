"""The input pipeline: what a caller holds → ``(style, text the model sees)`` (DESIGN.md §3a).

One pure, versioned function shared by training (corpora → records), evaluation, the drift reference,
explain / probe and serving; nothing else rewrites text (except a recipe's training-only augmentation,
``training/data/augment.py``, which never reaches validation, evaluation or serving). Inputs:

* :class:`EmailInput` — a raw RFC 822 / MIME message (:mod:`.mime`), laid out as in training
  (``Subject: …\\n\\nbody``, :mod:`.layout`) after the e-mail masking rules (:mod:`.masking`);
* :class:`SmsInput` — an SMS text (+ sender, reported back, never shown to the model: no corpus has one);
* :class:`UrlInput` — one URL;
* a plain ``str`` — style detected (:mod:`.style`); a string holding a raw message (header block) is
  parsed as one, a ``Subject: …`` string is split as the training layout.

The bundle manifest records :attr:`Pipeline.name` and :attr:`Pipeline.version`; the server applies the
pipeline the adapter was trained with (:func:`get_pipeline`) and refuses versions it does not know.
Changing what any input turns into means a new version (and retrained adapters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .layout import email_text, short_text
from .mime import Attachment, EmailLimits, InputError, InputTooLarge, ParsedEmail, parse_email
from .style import Style, detect_style, looks_like_rfc822

PIPELINE_NAME = "phishlens-text"
PIPELINE_VERSION = 1
StyleSource = Literal["given", "detected"]

__all__ = [
    "Attachment",
    "EmailInput",
    "EmailLimits",
    "EmailSummary",
    "InputError",
    "InputItem",
    "InputTooLarge",
    "Pipeline",
    "PIPELINE",
    "PIPELINE_NAME",
    "PIPELINE_VERSION",
    "Prepared",
    "SmsInput",
    "UnknownPipeline",
    "UrlInput",
    "get_pipeline",
    "known_pipelines",
]


@dataclass(frozen=True)
class EmailInput:
    raw: bytes | str  # the message as received (bytes) or as text


@dataclass(frozen=True)
class SmsInput:
    text: str
    sender: str | None = None


@dataclass(frozen=True)
class UrlInput:
    url: str


InputItem = str | EmailInput | SmsInput | UrlInput


@dataclass(frozen=True)
class EmailSummary:
    """What the parser found in a raw message (no text: attachments by name, type and size only)."""

    body_type: str  # "text/plain" | "text/html" | "none"
    attachments: tuple[Attachment, ...]
    forwarded: bool  # a forwarded message (message/rfc822) was followed and appended to the body
    parts: int
    defects: tuple[str, ...]  # names of the MIME defects the parser recorded (broken boundaries, ...)


@dataclass(frozen=True)
class Prepared:
    style: Style
    style_source: StyleSource
    text: str  # exactly what the adapter's prompt template wraps
    email: EmailSummary | None = None
    sender: str | None = None


class UnknownPipeline(ValueError):
    """A bundle names a pipeline (name, version) this code does not implement."""


class Pipeline:
    """Version 1: the masking rules and layout the shipped adapters were trained with."""

    name = PIPELINE_NAME
    version = PIPELINE_VERSION

    def __init__(self, limits: EmailLimits = EmailLimits()) -> None:
        self.limits = limits

    def with_limits(self, limits: EmailLimits) -> Pipeline:
        return type(self)(limits)

    # -- training entry points (a corpus row is already split into fields) ---------------------------
    def email_fields(self, subject: str, body: str, source: str | None = None) -> str:
        """An e-mail given as subject + body text; `source` enables that corpus's own rules."""
        return email_text(subject, body, source)

    def short(self, text: str, style: Style, source: str | None = None) -> str:
        """An SMS or a URL."""
        return short_text(text, style, source)

    # -- what callers send -------------------------------------------------------------------------
    def prepare(self, item: InputItem, source: str | None = None) -> Prepared:
        """``(style, text)`` for one input; :class:`InputError` / :class:`InputTooLarge` when it cannot."""
        if isinstance(item, EmailInput):
            return self._email(parse_email(item.raw, self.limits), "given", source)
        if isinstance(item, SmsInput):
            return Prepared("sms", "given", self.short(item.text, "sms", source), sender=item.sender)
        if isinstance(item, UrlInput):
            return Prepared("url", "given", self.short(item.url.strip(), "url", source))
        if not isinstance(item, str):
            raise InputError(f"unsupported input type {type(item).__name__}")
        style = detect_style(item)
        if style != "email":
            return Prepared(style, "detected", self.short(item, style, source))
        if looks_like_rfc822(item):
            return self._email(parse_email(item.lstrip(), self.limits), "detected", source)
        subject, body = split_layout(item)
        return Prepared("email", "detected", self.email_fields(subject, body, source))

    def _email(self, parsed: ParsedEmail, style_source: StyleSource, source: str | None) -> Prepared:
        summary = EmailSummary(
            parsed.body_type, parsed.attachments, parsed.forwarded is not None, parsed.parts, parsed.defects
        )
        text = self.email_fields(parsed.subject, parsed.body, source)
        return Prepared("email", style_source, text, summary)


def split_layout(text: str) -> tuple[str, str]:
    """A flattened e-mail in the training layout → (subject, body); without a Subject line, all body."""
    t = text.lstrip()
    if t[:8].lower() != "subject:":
        return "", text
    first, _, rest = t.partition("\n")
    return first[8:].strip(), rest


PIPELINE = Pipeline()
_KNOWN: dict[tuple[str, int], Pipeline] = {(PIPELINE.name, PIPELINE.version): PIPELINE}


def known_pipelines() -> list[tuple[str, int]]:
    return sorted(_KNOWN)


def get_pipeline(name: str, version: int) -> Pipeline:
    """The implementation of pipeline (name, version); :class:`UnknownPipeline` when there is none."""
    try:
        return _KNOWN[(name, version)]
    except KeyError:
        known = ", ".join(f"{n} v{v}" for n, v in known_pipelines())
        raise UnknownPipeline(
            f"input pipeline {name} v{version} is not known to this server "
            f"(it implements {known}); upgrade phishlens or retrain the adapter"
        ) from None
