"""Copy a bundle out of the adapter roots into a private directory before it is validated and served.

`AdapterRegistry.resolve_path` checks that a path resolves inside the roots, but a check on a path is
only good until someone swaps a directory on it for a symlink (time of check ≠ time of use). So the
bundle is read once, here, through directory file descriptors opened with O_NOFOLLOW from the root
down: a symlink anywhere below the root, swapped in at any time, fails the open instead of being
followed. What was read is copied (size and file-count capped, regular files only) into a directory
only this process writes; validation, the content sha256 and the engine all use that copy, so the
weights that answer are the weights that were checked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .errors import BadRequest, PayloadTooLarge

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: a FIFO swapped in for a file must not block the open; it is then refused by fstat
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_MAX_DEPTH = 4
_CHUNK = 1 << 20


class _Budget:
    def __init__(self, max_bytes: int, max_files: int) -> None:
        self.bytes_left, self.files_left = max_bytes, max_files
        self.max_bytes, self.max_files = max_bytes, max_files

    def file(self, name: str) -> None:
        self.files_left -= 1
        if self.files_left < 0:
            raise PayloadTooLarge(f"bundle has more than {self.max_files} files")

    def take(self, n: int) -> None:
        self.bytes_left -= n
        if self.bytes_left < 0:
            raise PayloadTooLarge(
                f"bundle is larger than {self.max_bytes} bytes (PHISHLENS_MAX_BUNDLE_BYTES)"
            )


def snapshot_bundle(real: Path, roots: list[Path], staging: Path, max_bytes: int, max_files: int) -> Path:
    """Copy the bundle at `real` (already resolved inside one of `roots`) into a new directory under
    `staging`; refuse symlinks, special files and anything over the caps. Returns the copy's path."""
    root = next((r for r in roots if real == r or real.is_relative_to(r)), None)
    if root is None:
        raise BadRequest(f"bundle {real.name!r} is outside the allowed adapter roots")
    budget = _Budget(max_bytes, max_files)
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    dest = Path(tempfile.mkdtemp(prefix=f"{real.name[:40]}-", dir=staging))
    try:
        with contextlib.ExitStack() as stack:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # the root itself is the operator's setting
            stack.callback(os.close, fd)
            for part in real.relative_to(root).parts:
                fd = _open_dir(part, fd, real.name)
                stack.callback(os.close, fd)
            _copy_dir(fd, dest, budget, real.name, 0)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def discard(copy: Path, staging: Path) -> None:
    """Remove a copy made by `snapshot_bundle` (only ever a directory inside `staging`)."""
    if copy.parent == staging:
        shutil.rmtree(copy, ignore_errors=True)


def _open_dir(name: str, parent_fd: int, bundle: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise BadRequest(
                f"bundle {bundle!r}: {name!r} is a symlink or not a directory (changed after the "
                "path check?); bundles are read without following links"
            ) from e
        raise BadRequest(f"bundle {bundle!r}: cannot open {name!r} ({e.strerror})") from e


def _copy_dir(fd: int, dest: Path, budget: _Budget, bundle: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise BadRequest(f"bundle {bundle!r} nests directories deeper than {_MAX_DEPTH}")
    for name in sorted(os.listdir(fd)):
        budget.file(name)
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            sub = _open_dir(name, fd, bundle)
            try:
                (dest / name).mkdir(mode=0o700)
                _copy_dir(sub, dest / name, budget, bundle, depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(name, fd, dest / name, budget, bundle)
        else:
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise BadRequest(
                f"bundle {bundle!r}: {name!r} is {kind}; bundles hold JSON and safetensors files only"
            )


def _copy_file(name: str, dir_fd: int, out: Path, budget: _Budget, bundle: str) -> None:
    try:
        src = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        raise BadRequest(
            f"bundle {bundle!r}: cannot open {name!r} without following links ({e.strerror})"
        ) from e
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise BadRequest(f"bundle {bundle!r}: {name!r} is not a regular file")
        budget.take(st.st_size)  # refuse before copying when the size already says so
        os.set_blocking(src, True)
        copied = 0
        with open(out, "xb") as fh:
            while chunk := os.read(src, _CHUNK):
                copied += len(chunk)
                if copied > st.st_size:  # the file grew while being copied
                    budget.take(len(chunk))
                fh.write(chunk)
    finally:
        os.close(src)
