"""The feedback journal (server/services/feedback_journal.py): durable appends, replay, damage, lock,
full disk.

Pure file I/O on tmp_path; the real-process `kill -9` test is tests/e2e/test_reliability_faults.py.
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from phishlens.server.services.feedback_journal import (
    JOURNAL,
    AdapterSnapshot,
    FeedbackJournal,
    JournalEntry,
    JournalItem,
)


def replay(path):
    j = FeedbackJournal(path)
    try:
        return j.open()
    finally:
        j.close()


def entry(n: int, outcome: str | None = "tp") -> JournalEntry:
    return JournalEntry(
        n.to_bytes(16, "big"),
        1e12 + n,
        [
            JournalItem(0, "default", "phishing", "ab" * 32 if outcome else None, outcome),
            JournalItem(1, "default", "legitimate"),
        ],
    )


def test_appended_entries_replay_in_order(tmp_path):
    j = FeedbackJournal(tmp_path)
    assert j.open().entries == []
    for n in range(5):
        assert j.append(entry(n))
    j.close()
    r = replay(tmp_path)
    assert [e.mac for e in r.entries] == [n.to_bytes(16, "big") for n in range(5)]
    assert r.entries[2] == entry(2) and r.bad_lines == 0


def test_compaction_replaces_the_journal_and_a_header_restates_the_past(tmp_path):
    j = FeedbackJournal(tmp_path)
    j.open()
    for n in range(4):
        j.append(entry(n))
    snap = {"default": AdapterSnapshot("ab" * 32, {"tp": 7, "fp": 1, "tn": 3, "fn": 0}, ["tp", "fp", "tn"])}
    assert j.compact(snap, [entry(3, outcome=None)]) and j.records == 2
    j.append(entry(9))
    j.close()
    r = replay(tmp_path)
    assert r.adapters == snap
    assert [e.mac[-1] for e in r.entries] == [3, 9]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_torn_last_line_and_a_corrupt_line_are_logged_skipped_and_kept(tmp_path, caplog):
    j = FeedbackJournal(tmp_path)
    j.open()
    for n in range(3):
        j.append(entry(n))
    j.close()
    path = tmp_path / JOURNAL
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])  # the last append cut mid-write (no newline)
    with caplog.at_level(logging.WARNING):
        r = replay(tmp_path)
    assert [e.mac[-1] for e in r.entries] == [0, 1] and r.bad_lines == 1
    assert "torn last line (line 3, cut mid-write)" in caplog.text
    lines = data.split(b"\n")
    path.write_bytes(lines[0] + b"\n\x00\xffgarbage{\n" + b"\n".join(lines[1:]))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        r = replay(tmp_path)
    assert [e.mac[-1] for e in r.entries] == [0, 1, 2]
    assert "1 unreadable line(s), the first at line 2" in caplog.text
    kept = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert kept, "the damaged journal is kept for inspection"


def test_a_second_process_on_the_same_folder_keeps_memory_only(tmp_path, caplog):
    a = FeedbackJournal(tmp_path)
    a.open()
    b = FeedbackJournal(tmp_path)
    with caplog.at_level(logging.WARNING):
        b.open()
    assert a.enabled and not b.enabled
    assert "is in use by another process" in caplog.text
    assert not b.append(entry(1)) and a.append(entry(2))
    a.close()
    c = FeedbackJournal(tmp_path)
    c.open()
    assert c.enabled  # the lock went with the first one


def test_full_disk_is_logged_and_the_old_journal_stays(tmp_path, monkeypatch, caplog):
    j = FeedbackJournal(tmp_path)
    j.open()
    j.append(entry(1))
    good = (tmp_path / JOURNAL).read_bytes()
    real_write = os.write

    def full_disk(fd, data):  # ENOSPC after part of the data, as a filling device does
        if str(tmp_path) in os.readlink(f"/proc/self/fd/{fd}") and len(data) > 8:
            real_write(fd, bytes(data[:8]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with caplog.at_level(logging.WARNING):
        assert not j.compact({"default": AdapterSnapshot("ab" * 32)}, [entry(1)])
    assert (tmp_path / JOURNAL).read_bytes() == good  # atomic replace: never a half-written journal
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert "cannot compact feedback state" in caplog.text and "No space left on device" in caplog.text
    with caplog.at_level(logging.WARNING):
        assert not j.append(entry(2))
    assert "cannot persist feedback state" in caplog.text
    monkeypatch.undo()
    assert (tmp_path / JOURNAL).read_bytes() == good  # the partial line was cut back off
    assert j.append(entry(3))  # space again: appends resume on a clean line
    j.close()
    r = replay(tmp_path)
    assert [e.mac[-1] for e in r.entries] == [1, 3] and r.bad_lines == 0


@pytest.mark.parametrize("state_dir", [None])
def test_disabled_journal_writes_nothing(state_dir):
    j = FeedbackJournal(state_dir)
    assert j.open().entries == [] and not j.enabled and not j.append(entry(1))
