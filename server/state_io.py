"""Crash- and full-disk-safe state files: write a temp file, fsync it, rename it over the old one.

A reader (a restart, even after `kill -9` or a power cut) sees the old file or the new one, never half
of one; a failed write (ENOSPC, EIO) raises OSError before anything is renamed, so the last good state
stays in place. (safetensors' `save_file` is not enough on its own: writing to a full disk through it
was measured to return without error and leave a truncated file, which the rename then installed.)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably; OSError (nothing replaced) on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
