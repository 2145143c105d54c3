"""Raw RFC 822 / MIME message → subject, body text and a summary of what the message holds.

Standard library ``email`` with the modern policy (``email.policy.default``). Rules, as a mail client
would show the message:

* **Body**: the text/plain alternative when there is one, else text/html rendered to text
  (:mod:`.html_text`); parts marked as attachments never count as the body.
* **Charsets** are decoded with replacement (never an error). ``us-ascii`` and ``iso-8859-1`` /
  ``latin1`` labels are read as windows-1252, as browsers do (mislabelled mail is common). An 8-bit part
  of a message given as a Unicode string is read as the characters given.
* **Attachments** are listed by file name, content type and (approximate) size; never decoded.
* **A forwarded message** (a ``message/rfc822`` part) is followed ONE level: its subject and body are
  appended to the body. Deeper forwards are listed as attachments.
* **Broken MIME** (a boundary that never occurs, bad base64) degrades to the best text available and
  the defects are counted in the summary.
* **Caps** (:class:`EmailLimits`): MIME parts, nesting depth and decoded text bytes; past any of them
  :class:`InputTooLarge` says which cap and by how much, before the expensive step.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from .html_text import html_to_text

FORWARD_OUTER_CAP = 1000  # characters of the wrapper's own text kept before a forwarded message


class InputError(ValueError):
    """An input the pipeline cannot turn into model text; the message says why (a 4xx, never a 5xx)."""


class InputTooLarge(InputError):
    """An input over one of the pipeline's caps (HTTP 413)."""


@dataclass(frozen=True)
class EmailLimits:
    max_parts: int = 100
    max_depth: int = 8
    max_decoded_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded bytes (estimated from the transfer encoding, never decoded)


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    body: str  # visible text of the chosen body part (plus the forwarded message), before masking
    body_type: str  # "text/plain" | "text/html" | "none"
    attachments: tuple[Attachment, ...] = ()
    forwarded: ParsedEmail | None = None
    parts: int = 1
    defects: tuple[str, ...] = ()


@dataclass
class _Budget:
    limits: EmailLimits
    parts: int = 0
    decoded: int = 0
    defects: list[str] = field(default_factory=list)


_WINDOWS_1252_LABELS = {"us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "cp819"}
_MULTIPART = re.compile(rb"content-type:\s*multipart/", re.I)


def parse_email(raw: bytes | str, limits: EmailLimits = EmailLimits()) -> ParsedEmail:
    """Parse one raw message (bytes as received, or a string holding it)."""
    from_text = isinstance(raw, str)
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
    if not data.strip():
        raise InputError("the e-mail is empty")
    declared = len(_MULTIPART.findall(data))
    if declared > limits.max_parts:  # a cheap bound before the (recursive) parser sees the nesting
        raise InputTooLarge(
            f"the e-mail declares {declared} multipart containers; the limit is {limits.max_parts} MIME parts"
        )
    try:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        budget = _Budget(limits)
        _check_tree(msg, 0, budget)
        return _parse(msg, budget, from_text, follow_forward=True)
    except InputError:
        raise
    except RecursionError as e:
        raise InputTooLarge(f"the e-mail nests MIME parts too deeply (limit {limits.max_depth})") from e
    except Exception as e:  # noqa: BLE001 - the stdlib parser raises assorted errors on malformed MIME
        # (e.g. ValueError for a NUL in a charset parameter): a 4xx naming the error, never a 5xx
        raise InputError(f"the e-mail could not be parsed ({type(e).__name__}: malformed MIME)") from e


def _check_tree(part: Message, depth: int, budget: _Budget) -> None:
    budget.parts += 1
    if budget.parts > budget.limits.max_parts:
        raise InputTooLarge(f"the e-mail has more than {budget.limits.max_parts} MIME parts")
    if depth > budget.limits.max_depth:
        raise InputTooLarge(
            f"the e-mail nests MIME parts {depth} deep; the limit is {budget.limits.max_depth}"
        )
    budget.defects += [type(d).__name__ for d in part.defects]
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                _check_tree(sub, depth + 1, budget)


def _parse(msg: Message, budget: _Budget, from_text: bool, follow_forward: bool) -> ParsedEmail:
    subject = _header(msg, "subject")
    body_part = _find_body(msg)
    body, body_type, fallback = "", "none", False
    if body_part is not None:
        body_type = body_part.get_content_type()
        body = _text_of(body_part, budget, from_text)
    elif not msg.is_multipart() and msg.get_content_maintype() in ("multipart", "text"):
        # broken MIME (e.g. the declared boundary never occurs): re-split on the boundary the parts use,
        # else the raw payload is the best text there is
        recovered = _recover_parts(msg, budget) if msg.get_content_maintype() == "multipart" else None
        if recovered is not None:
            body_part = recovered
            body_type = recovered.get_content_type()
            body = _text_of(recovered, budget, from_text)
        else:
            body = _text_of(msg, budget, from_text)
            body_type = "text/html" if _looks_html(body) else "text/plain"
        fallback = True
    if body_type == "text/html":
        body = html_to_text(body)
    attachments: list[Attachment] = []
    forwarded: ParsedEmail | None = None
    for part in _leaves(msg):
        if part is body_part:
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and follow_forward and forwarded is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                forwarded = _parse(inner[0], budget, from_text, follow_forward=False)
                attachments += forwarded.attachments  # the forward's own attachments, listed not followed
                continue
        if _is_alternative_twin(part, body_part) or (part is msg and fallback):
            continue
        attachments.append(Attachment(part.get_filename(), ctype, _size(part)))
    if forwarded is not None:
        inner = f"Subject: {forwarded.subject}\n\n{forwarded.body}" if forwarded.subject else forwarded.body
        outer = body.strip()
        if len(outer) > FORWARD_OUTER_CAP:
            outer = outer[:FORWARD_OUTER_CAP]
        body = f"{outer}\n\n{inner}" if outer else inner
    return ParsedEmail(
        subject,
        body,
        body_type,
        tuple(attachments),
        forwarded,
        budget.parts,
        tuple(dict.fromkeys(budget.defects)),
    )


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header must not fail the parse
        raw = dict((k.lower(), v) for k, v in msg.raw_items()).get(name, "")
        value = str(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "" if value is None else " ".join(str(value).split())


def _find_body(msg: Message) -> Message | None:
    if isinstance(msg, EmailMessage):
        try:
            return msg.get_body(preferencelist=("plain", "html"))
        except Exception:  # noqa: BLE001 - malformed structure: fall back below
            return None
    return None


def _leaves(msg: Message):
    """Non-multipart parts, without descending into forwarded messages (they are parsed on their own)."""
    stack = [msg]
    while stack:
        part = stack.pop(0)
        payload = part.get_payload()
        if part.get_content_type() == "message/rfc822" or not isinstance(payload, list):
            yield part
            continue
        stack[:0] = [p for p in payload if isinstance(p, Message)]


def _is_alternative_twin(part: Message, body_part: Message | None) -> bool:
    """The other rendering (HTML or plain) of the chosen body: an alternative, not an attachment."""
    if body_part is None or part.get_content_disposition() == "attachment" or part.get_filename():
        return False
    return part.get_content_type() in ("text/plain", "text/html")


def _charset(part: Message) -> str:
    cs = (part.get_content_charset() or "us-ascii").strip().lower()
    if cs in _WINDOWS_1252_LABELS:
        return "windows-1252"
    try:
        return codecs.lookup(cs).name
    except LookupError:
        return "utf-8"


def _text_of(part: Message, budget: _Budget, from_text: bool) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return ""
    encoded = len(payload)
    if budget.decoded + encoded > budget.limits.max_decoded_bytes:
        raise InputTooLarge(f"the e-mail's text parts exceed {budget.limits.max_decoded_bytes} bytes")
    data = part.get_payload(decode=True) or b""
    budget.decoded += len(data)
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if from_text or _charset(part) == "windows-1252":
        # text given as characters (8-bit parts already are), or a label that often lies: UTF-8 first
        if from_text and cte in ("base64", "quoted-printable"):
            return data.decode(_charset(part), "replace")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return data.decode(_charset(part), "replace")


_BOUNDARY_LINE = re.compile(r"^--([^\s-][^\s]{0,198})[ \t]*$", re.M)


def _recover_parts(msg: Message, budget: _Budget) -> Message | None:
    """A multipart whose declared boundary never occurs: parse it again with the boundary its parts use."""
    payload = msg.get_payload()
    if not isinstance(payload, str):
        return None
    m = _BOUNDARY_LINE.search(payload)
    if m is None:
        return None
    boundary = m.group(1)
    if boundary.endswith("--"):
        boundary = boundary[:-2]
    budget.defects.append("BoundaryRecovered")
    fixed = email.message_from_string(
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n{payload}', policy=email.policy.default
    )
    _check_tree(fixed, 1, budget)
    return _find_body(fixed)


def _looks_html(text: str) -> bool:
    head = text[:4000].lower()
    return "<html" in head or "<body" in head or "<div" in head or "<p>" in head or "<br" in head


def _size(part: Message) -> int:
    payload = part.get_payload()
    if isinstance(payload, list):
        return 0
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64":  # exact for well-formed base64, without decoding it
        n = len(payload) - sum(payload.count(c) for c in " \t\r\n")
        return n * 3 // 4 - payload.rstrip().endswith("=") - payload.rstrip().endswith("==")
    return len(payload)
