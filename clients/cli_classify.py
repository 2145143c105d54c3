"""What `phishlens classify` reads and prints: inputs (texts, line files, whole files, e-mails) and the table.

Pure functions over client wire types, no I/O beyond reading the named files or stdin, so the command in
`clients/cli.py` stays a short sequence (read → send in batches → print) and the formatting is testable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from phishlens.clients.protocol import AdapterCalibration, ClassifyResult

STDIN = "-"


@dataclass(frozen=True)
class Inputs:
    """The texts to send, in order; `ids` are JSONL ids, `sources` the file each text came from."""

    texts: list[Any]  # str, or the raw bytes of an RFC 822 message when `emails`
    ids: list[Any] = field(default_factory=list)
    sources: list[str | None] = field(default_factory=list)
    emails: bool = False  # texts are raw RFC 822 messages, sent as typed e-mail inputs

    def id_of(self, i: int) -> Any:
        return self.ids[i] if self.ids else None

    def source_of(self, i: int) -> str | None:
        return self.sources[i] if self.sources else None


def _read(path: str) -> str:
    if path == STDIN:
        return sys.stdin.read()
    # newline="" keeps CR LF of e-mails as they are; errors="replace" so a stray byte never aborts a batch
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return f.read()


def _one_stdin(paths: Sequence[str]) -> None:
    if sum(p == STDIN for p in paths) > 1:
        raise ValueError("'-' (stdin) can be given only once")


def texts_from_args(args: Sequence[str]) -> Inputs:
    """Each argument is one text; '-' reads all of stdin as one text (as `explain -` and `probe -` do)."""
    _one_stdin(args)
    texts = [_read(STDIN) if a == STDIN else a for a in args]
    _no_empty(texts, [("stdin" if a == STDIN else f"text {i}") for i, a in enumerate(args)])
    return Inputs(texts)


def whole_files(paths: Sequence[str], *, emails: bool = False) -> Inputs:
    """One text per file (a whole e-mail, page or message); '-' is stdin. E-mails are kept as bytes, so
    8-bit bodies in any charset reach the server's MIME parser unchanged."""
    _one_stdin(paths)
    texts: list[Any] = []
    for p in paths:
        try:
            if emails:
                texts.append(sys.stdin.buffer.read() if p == STDIN else Path(p).read_bytes())
            else:
                texts.append(_read(p))
        except OSError as exc:
            raise ValueError(f"{p}: {exc.strerror or exc}") from exc
    _no_empty([t.decode("latin-1") if isinstance(t, bytes) else t for t in texts], list(paths))
    return Inputs(texts, sources=list(paths), emails=emails)


def _no_empty(texts: Sequence[str], names: Sequence[str]) -> None:
    for text, name in zip(texts, names):
        if not text.strip():
            raise ValueError(f"{name}: empty (nothing to classify)")


def line_files(paths: Sequence[str]) -> Inputs:
    """One text per line of each file, or JSONL objects with a 'text' field (optional 'id'); '-' is stdin.

    The first non-blank line of each file decides: a JSON object makes that whole file JSONL.
    """
    _one_stdin(paths)
    texts: list[str] = []
    ids: list[Any] = []
    sources: list[str | None] = []
    for p in paths:
        try:
            raw = _read(p)
        except OSError as exc:
            raise ValueError(f"{p}: {exc.strerror or exc}") from exc
        t, i = _lines(raw, p)
        texts += t
        ids += i
        sources += [p] * len(t)
    return Inputs(texts, ids if any(x is not None for x in ids) else [], sources if len(paths) > 1 else [])


def _lines(raw: str, name: str) -> tuple[list[str], list[Any]]:
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(raw.split("\n"), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{name}: no texts")
    if not _is_json_object(lines[0][1]):
        return [line for _, line in lines], [None] * len(lines)
    texts, ids = [], []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f"{name}:{n}: expected an object with a string 'text' field")
        texts.append(record["text"])
        ids.append(record.get("id"))
    return texts, ids


def _is_json_object(line: str) -> bool:
    if not line.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def adapter_names(values: Sequence[str] | None) -> list[str]:
    """`-a x -a y` and `-a x,y` both name two adapters; order kept, repeats dropped."""
    names: list[str] = []
    for value in values or []:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names


def base_url(url: str) -> str:
    """The server's base URL as typed: trailing '/' and '/v1' dropped; an endpoint is an error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"--url {url!r} is not an http(s) URL; give the server's base URL, e.g. http://127.0.0.1:8000"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    if "/v1/" in path + "/" or parts.query or parts.fragment:
        raise ValueError(
            f"--url {url!r} names an endpoint; give the server's base URL, e.g. "
            f"{parts.scheme}://{parts.netloc}"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# --------------------------------------------------------------------------------------------------
# The table: one row per input, one column per adapter, then the legend


LABEL_COLORS = {"phishing": "red", "legitimate": "green"}
CELL_WIDTH = len("legitimate 0.000 UTO")


@dataclass(frozen=True)
class Row:
    index: int
    request_id: str | None
    results: Mapping[str, ClassifyResult]  # adapter name -> result
    name: str  # text preview, or the file it came from


def cell(result: ClassifyResult | None, style: Any = None) -> str:
    """`phishing   0.972 U`: label, score, flags (U uncertain, T truncated, O out of distribution), padded
    to one width."""
    if result is None:
        return "-".ljust(CELL_WIDTH)
    flags = (
        ("U" if result.uncertain else "")
        + ("T" if result.truncated else "")
        + ("O" if result.ood is not None and result.ood.flagged else "")
    )
    label = f"{result.label:<10}"
    if style is not None:
        label = style(label, fg=LABEL_COLORS.get(result.label), bold=result.label == "phishing")
    return f"{label} {result.score:.3f} {flags:<3}"


def preview(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 3)] + "..."


def table(
    rows: Sequence[Row],
    adapters: Sequence[str],
    *,
    style: Any = None,
    text_width: int = 60,
    name_header: str = "text",
) -> list[str]:
    """Header and rows; each adapter column is as wide as the longer of its name and a cell."""
    widths = [max(CELL_WIDTH, len(a)) for a in adapters]
    index_w = max([1, *(len(str(r.index)) for r in rows)])
    header = "  ".join([f"{'#':>{index_w}}", *(f"{a:<{w}}" for a, w in zip(adapters, widths)), name_header])
    out = [header.rstrip()]
    for r in rows:
        cells = []
        for a, w in zip(adapters, widths):
            c = cell(r.results.get(a), style)
            cells.append(c + " " * (w - CELL_WIDTH))
        out.append("  ".join([f"{r.index:>{index_w}}", *cells, preview(r.name, text_width)]).rstrip())
    return out


def legend(adapters: Sequence[str], calibrations: Mapping[str, AdapterCalibration | None]) -> list[str]:
    """Why a score got its label: each adapter's threshold and uncertain band, and what the flags mean."""
    width = max(len(a) for a in adapters)
    out = []
    for a in adapters:
        cal = calibrations.get(a)
        if cal is None:
            out.append(f"{a:<{width}}  threshold not reported by the server")
        else:
            out.append(
                f"{a:<{width}}  phishing when score >= {cal.threshold:.3f}; "
                f"U (uncertain) when {cal.uncertain_low:.3f} <= score <= {cal.uncertain_high:.3f}"
            )
    out.append(
        "score = calibrated P(phishing); U = in the adapter's uncertain band; "
        "T = text truncated (head and tail kept); O = unlike the adapter's reference texts (ood.flagged)"
    )
    return out


def path_name(path: str | None) -> str:
    return "stdin" if path in (None, STDIN) else Path(path).name
