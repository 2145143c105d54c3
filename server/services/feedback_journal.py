"""Durable feedback state: an append-only, fsync'd journal that a restart (even after `kill -9`) replays.

Every `POST /v1/feedback` that records or notes a label appends one JSON line, written with one `write` to
an `O_APPEND` file and fsync'd *before* the answer goes out, so an answered label is on disk. A restart
replays the lines into the live precision/recall windows, the per-adapter outcome totals (the
`phishlens_feedback_total` counters resume where they were) and the duplicate ledger. When the journal has
grown past twice what it must hold, it is compacted: one header line (per adapter: bundle sha256, totals,
live window) plus the ledger's entries, written to a temp file, fsync'd and renamed over the old one
(state_io), so a reader sees the old journal or the new one, never half of one.

Lines never carry request text: the request id's MAC (the ledger key), expiry, text index, adapter name,
labels, outcome and the bundle sha256.

Damage is survivable: a torn last line (power cut mid-write) or a corrupt line is logged once with its line
number and skipped; an unreadable journal is kept beside as `<name>.corrupt-<unix time>` for inspection
and the server starts with what could be read. A failed append (full disk, EIO) is logged and serving
continues (the label still counts in memory). One process per folder: a second one (same folder, another
replica) is refused the lock, logs it and keeps its state in memory only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phishlens.explain.performance import OUTCOMES

from ..state_io import atomic_write_bytes

logger = logging.getLogger(__name__)
FORMAT = 1
JOURNAL = "feedback.jsonl"
LOCK = "feedback.lock"


@dataclass(frozen=True)
class JournalItem:
    """One label of a request: `sha256`/`outcome` set when it was counted (recorded), None when only noted."""

    index: int
    adapter: str
    label: str
    sha256: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """Labels recorded for one request (its id's MAC) and when the ledger forgets them."""

    mac: bytes
    expires: float
    items: list[JournalItem]


@dataclass
class AdapterSnapshot:
    sha256: str
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    live: list[str] = field(default_factory=list)  # outcomes, oldest first


@dataclass
class Replay:
    """What a journal held: the compacted per-adapter state, then the entries in order."""

    adapters: dict[str, AdapterSnapshot] = field(default_factory=dict)
    entries: list[JournalEntry] = field(default_factory=list)
    bad_lines: int = 0


def _entry_line(e: JournalEntry) -> bytes:
    items = [[i.index, i.adapter, i.label, i.sha256, i.outcome] for i in e.items]
    return (
        json.dumps({"mac": e.mac.hex(), "exp": e.expires, "items": items}, separators=(",", ":")) + "\n"
    ).encode()


def _parse_entry(obj: dict[str, Any]) -> JournalEntry:
    items = []
    for index, adapter, label, sha, outcome in obj["items"]:
        if (
            not isinstance(index, int)
            or not isinstance(adapter, str)
            or label not in ("phishing", "legitimate")
            or (outcome is not None and (outcome not in OUTCOMES or not isinstance(sha, str)))
        ):
            raise ValueError("malformed item")
        items.append(JournalItem(index, adapter, label, sha, outcome))
    return JournalEntry(bytes.fromhex(obj["mac"]), float(obj["exp"]), items)


def _parse_header(obj: dict[str, Any]) -> dict[str, AdapterSnapshot]:
    if obj.get("format") != FORMAT:
        raise ValueError(f"format {obj.get('format')!r}, expected {FORMAT}")
    out = {}
    for name, a in obj["adapters"].items():
        totals = {o: int(a["totals"].get(o, 0)) for o in OUTCOMES}
        live = [str(o) for o in a["live"]]
        if any(o not in OUTCOMES for o in live) or any(v < 0 for v in totals.values()):
            raise ValueError("malformed adapter state")
        out[str(name)] = AdapterSnapshot(str(a["sha256"]), totals, live)
    return out


class FeedbackJournal:
    """The journal file of one state folder (see the module docstring); `enabled` False: memory only."""

    def __init__(self, state_dir: Path | None) -> None:
        self.dir = Path(state_dir).expanduser() if state_dir is not None else None
        self.path = self.dir / JOURNAL if self.dir is not None else None
        self.enabled = False
        self.records = 0  # lines in the journal file now (header included)
        self._lock_fd: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> Replay:
        """Take the folder's lock and read the journal; an empty Replay when disabled or nothing is there."""
        if self.dir is None:
            return Replay()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as e:
            logger.warning(
                "feedback state folder %s unusable (%s): feedback state kept in memory only", self.dir, e
            )
            return Replay()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            logger.warning(
                "feedback state folder %s is in use by another process: this one keeps its feedback "
                "state in memory only (give each replica its own PHISHLENS_FEEDBACK_STATE_DIR)",
                self.dir,
            )
            return Replay()
        self._lock_fd = fd
        self.enabled = True
        for tmp in self.dir.glob(f".{JOURNAL}.*.tmp"):  # a compaction cut short by a crash (we hold the lock)
            with contextlib.suppress(OSError):
                tmp.unlink()
        return self._read()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self.enabled = False

    def _read(self) -> Replay:
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Replay()
        except OSError as e:
            logger.warning("feedback state %s unreadable (%s): starting empty", self.path, e)
            return Replay()
        replay = Replay()
        lines = raw.split(b"\n")
        torn = bool(lines[-1].strip())  # no newline at the end: the last write was cut
        bad: list[tuple[int, str]] = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise TypeError("not an object")
                if "adapters" in obj:
                    replay.adapters = _parse_header(obj)
                    replay.entries.clear()  # a header restates everything before it
                else:
                    replay.entries.append(_parse_entry(obj))
            except (ValueError, KeyError, TypeError) as e:
                bad.append((n, type(e).__name__))
        replay.bad_lines = len(bad)
        self.records = sum(1 for line in lines if line.strip())
        if bad:
            kept = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.link(self.path, kept)
            if torn and bad == [(len(lines), bad[0][1])]:
                what = f"a torn last line (line {len(lines)}, cut mid-write)"
            else:
                what = f"{len(bad)} unreadable line(s), the first at line {bad[0][0]} ({bad[0][1]})"
            logger.warning(
                "feedback state %s has %s: skipped, the rest restored (original kept as %s)",
                self.path,
                what,
                kept.name,
            )
        return replay

    # ---- writing -----------------------------------------------------------------------------------
    def append(self, entry: JournalEntry) -> bool:
        """Append one entry durably (fsync'd); False (logged) when it could not be written."""
        if not self.enabled or not entry.items:
            return False
        assert self.path is not None
        data = _entry_line(entry)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                size = os.fstat(fd).st_size  # we hold the folder's lock: the only writer
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)  # no partial line for the next append to run into
                    raise
            finally:
                os.close(fd)
        except OSError as e:
            logger.warning(
                "cannot persist feedback state to %s: %s (the label counts until a restart)", self.path, e
            )
            return False
        self.records += 1
        return True

    def compact(self, adapters: dict[str, AdapterSnapshot], entries: Iterable[JournalEntry]) -> bool:
        """Replace the journal by one header and the ledger's entries, atomically; False (logged) on
        failure."""
        if not self.enabled:
            return False
        assert self.path is not None
        header = {
            "format": FORMAT,
            "adapters": {
                n: {"sha256": a.sha256, "totals": a.totals, "live": a.live} for n, a in adapters.items()
            },
        }
        parts = [(json.dumps(header, separators=(",", ":")) + "\n").encode()]
        parts += [_entry_line(e) for e in entries if e.items]
        try:
            atomic_write_bytes(self.path, b"".join(parts))
        except OSError as e:
            logger.warning("cannot compact feedback state %s: %s (the old journal stays)", self.path, e)
            return False
        self.records = len(parts)
        return True
