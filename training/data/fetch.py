"""`phishlens data fetch`: download each corpus file, verify its sha256, lay it out under the data root.

`copy` files come from their original GitHub repository at the recorded commit; `derived` files (converted
by the corpus curators) and, with `--mirror`, every file come from a mirror: any HTTP(S) or file URL under
which a prepared data root is laid out (`<mirror>/raw/<dir>/<file>`). Bytes go to a temporary file beside
the target and replace it only once size and sha256 match, so an interrupted or tampered download never
leaves a file training would read. A file already in place with the right hash is not downloaded again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from phishlens.training.data.downloads import GITHUB_RAW, SourceFile

Status = Literal["present", "fetched", "manual", "failed"]


@dataclass(frozen=True)
class FetchResult:
    file: SourceFile
    status: Status
    message: str  # what happened, or the manual step / error, in one line


class VerificationError(ValueError):
    """Downloaded bytes are not the recorded ones (size or sha256)."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_all(
    files: Sequence[SourceFile],
    root: Path,
    *,
    mirror: str | None = None,
    accept: Sequence[str] = (),
    github_raw: str = GITHUB_RAW,
    progress: bool = False,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Fetch each of `files` into `root`: one result per file, a failure never stops the rest."""
    root.mkdir(parents=True, exist_ok=True)
    results = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as http:
        for f in files:
            results.append(_fetch_one(http, f, root, mirror, set(accept), github_raw, progress))
    return results


def _fetch_one(
    http: Any,
    f: SourceFile,
    root: Path,
    mirror: str | None,
    accept: set[str],
    github_raw: str,
    progress: bool,
) -> FetchResult:
    target = root / f.path
    if target.is_file() and target.stat().st_size == f.bytes and sha256_of(target) == f.sha256:
        return FetchResult(f, "present", f"{f.path}: already in place, sha256 verified")
    if f.terms and f.dir not in accept:
        return FetchResult(f, "manual", f"{f.path}: licence step needed. {f.terms}")
    if mirror is not None:
        url = f"{mirror.rstrip('/')}/{f.path}"
    elif f.github is not None:
        url = f.github.url(github_raw)
    else:
        return FetchResult(
            f,
            "manual",
            f"{f.path}: converted by the corpus curators ({f.origin}); not "
            "downloadable as is: fetch it from a mirror of the prepared data with --mirror URL, "
            f"or place it there yourself (sha256 {f.sha256}, {f.bytes:,} bytes)",
        )
    try:
        _download(http, url, target, f, progress)
    except VerificationError as exc:
        return FetchResult(f, "failed", f"{f.path}: {exc} (from {url}); nothing written")
    except (httpx.HTTPError, OSError) as exc:  # network, HTTP status, disk: one line, the others still run
        return FetchResult(f, "failed", f"{f.path}: download from {url} failed: {type(exc).__name__}: {exc}")
    return FetchResult(f, "fetched", f"{f.path}: downloaded from {url}, sha256 verified")


def _download(http: Any, url: str, target: Path, f: SourceFile, progress: bool) -> None:
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        with (
            os.fdopen(fd, "wb") as out,
            tqdm(
                total=f.bytes,
                unit="B",
                unit_scale=True,
                desc=target.name,
                disable=not progress,
                file=sys.stderr,
                leave=False,
            ) as bar,
        ):
            for block in _stream(http, url):
                size += len(block)
                if size > f.bytes:
                    raise VerificationError(f"more than the recorded {f.bytes:,} bytes")
                h.update(block)
                out.write(block)
                bar.update(len(block))
        if size != f.bytes:
            raise VerificationError(f"got {size:,} bytes, the recorded file has {f.bytes:,}")
        if h.hexdigest() != f.sha256:
            raise VerificationError(f"sha256 {h.hexdigest()} differs from the recorded {f.sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _stream(http: Any, url: str) -> Any:
    """Blocks of the body at `url` (http, https or file)."""
    if url.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        with open(unquote(urlsplit(url).path), "rb") as src:
            yield from iter(lambda: src.read(1 << 20), b"")
        return
    with http.stream("GET", url) as response:
        response.raise_for_status()
        yield from response.iter_bytes(1 << 20)


def summary(results: Sequence[FetchResult]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("present", "fetched", "manual", "failed")}
    return (
        f"{counts['present'] + counts['fetched']} of {len(results)} files in place "
        f"({counts['fetched']} downloaded, {counts['present']} already there); "
        f"{counts['manual']} need a manual step; {counts['failed']} failed"
    )
