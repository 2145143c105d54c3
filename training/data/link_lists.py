"""Legitimate URLs from two public, curated link lists (issue 13, session 18).

The benign URL side of the generalist is ISCX's ~310 hosts, 2002-era links in SpamAssassin ham and 500 root
domains. Unseen legitimate URLs are deep links on hosts the adapter never saw (a PDF on a university site, an
article on a news site). Two community-curated Markdown link lists, each a pinned commit of a public GitHub
repository with a permissive licence, add thousands of such hosts and path shapes:

- ``url_free_programming_books``: EbookFoundation/free-programming-books (CC BY 4.0), the lists under
  ``books/``, ``casts/``, ``courses/`` and ``more/`` (free books, courses and podcasts: university pages,
  PDFs, publishers, video sites in dozens of languages);
- ``url_public_apis``: public-apis/public-apis (MIT), ``README.md`` (documentation pages of ~1,400 APIs).

Every ``](http…)`` link target of the kept files is read, at most :data:`PER_HOST` per host (so YouTube
playlists and GitHub repositories do not dominate), reserved example domains dropped. The files are not in the
shared data root: :func:`fetch_link_list` downloads the pinned commit's archive into the extra-data folder and
checks a content digest (sha256 over ``<path> <sha256>`` lines) before anything replaces a copy; the loader
checks it again on every use. docs/data.md lists provenance and licence; nothing is committed.
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

from phishlens.training.data.corpora_extra import PER_HOST, ExtraDataMissing, capped_links, extra_data_dir
from phishlens.training.data.records import Record
from phishlens.training.data.rows import short_records

# RFC 2606 / 6761 names used in examples ("https://example.com/api"): not real sites
_RESERVED = ("example.com", "example.org", "example.net", "localhost")
_MD_LINK = re.compile(r"\]\((https?://[^)\s]+)\)", re.I)


@dataclass(frozen=True)
class LinkList:
    source: str  # training source id
    repo: str  # owner/name on GitHub
    commit: str
    include: str  # regex over a file's path inside the repository
    n_files: int
    digest: str  # content_digest() of the kept files
    # None: the kept files come from the commit's tarball. A path: that one file, as GitHub serves it raw
    # (public-apis marks its README ``export-ignore``, so tarballs leave it out)
    raw_path: str | None = None

    @property
    def folder(self) -> str:
        return f"{self.repo.split('/')[1]}-{self.commit[:7]}"

    @property
    def url(self) -> str:
        if self.raw_path is not None:
            return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.raw_path}"
        return f"https://codeload.github.com/{self.repo}/tar.gz/{self.commit}"


FREE_PROGRAMMING_BOOKS = LinkList(
    source="url_free_programming_books",
    repo="EbookFoundation/free-programming-books",
    commit="5b277d20f623ce5b2889b16fc9dd5e266536f521",
    include=r"^(books|casts|courses|more)/[^/]+\.md$",
    n_files=120,
    digest="5b8d4676c487ed3e3f5a066c50e661a087107280c42b60ce73c84a4b1d9b6bf9",
)
PUBLIC_APIS = LinkList(
    source="url_public_apis",
    repo="public-apis/public-apis",
    commit="c045a2eb505f0f8b7992bb4af53cc020f25003fd",
    include=r"^README\.md$",
    n_files=1,
    digest="5fbb9ad584a7536309de0f68520ca7dd6dcbbd68e5331523cc261b8561e2811a",
    raw_path="README.md",
)
LINK_LISTS = {ll.source: ll for ll in (FREE_PROGRAMMING_BOOKS, PUBLIC_APIS)}


def _digest(blobs: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for rel, data in sorted(blobs):
        h.update(f"{rel} {hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def _kept(folder: Path, ll: LinkList) -> list[tuple[str, bytes]]:
    pat = re.compile(ll.include)
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and pat.match(rel):
            out.append((rel, p.read_bytes()))
    return out


def content_digest(folder: Path, ll: LinkList) -> str:
    return _digest(_kept(folder, ll))


def _pinned(blobs: list[tuple[str, bytes]], ll: LinkList) -> bool:
    """The kept files are exactly the pinned ones (count and content digest)."""
    return len(blobs) == ll.n_files and _digest(blobs) == ll.digest


def list_dir(ll: LinkList) -> Path:
    return extra_data_dir() / ll.folder


def markdown_links(texts: list[str], per_host: int = PER_HOST) -> list[str]:
    """Distinct Markdown link targets in order, public hosts only, at most ``per_host`` per host."""
    return capped_links((raw for text in texts for raw in _MD_LINK.findall(text)), per_host, _reserved)


def _reserved(host: str) -> bool:
    return host == "" or any(host == r or host.endswith("." + r) for r in _RESERVED)


def _checked(ll: LinkList) -> list[tuple[str, bytes]]:
    folder = list_dir(ll)
    blobs = _kept(folder, ll) if folder.is_dir() else []
    if not blobs:
        raise ExtraDataMissing(
            f"{folder} is missing: run `phishlens data fetch --only {ll.source}` "
            f"(github.com/{ll.repo} at {ll.commit})"
        )
    if not _pinned(blobs, ll):
        pinned = f"{ll.n_files} files, digest {ll.digest}"
        raise ValueError(f"{folder}: contents differ from the pinned copy ({pinned})")
    return blobs


def load_link_list(ll: LinkList) -> list[Record]:
    blobs = _checked(ll)
    urls = markdown_links([data.decode("utf-8", errors="replace") for _, data in blobs])
    return short_records(((u, "legitimate") for u in urls), "url", ll.source)


def load_url_free_programming_books(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(FREE_PROGRAMMING_BOOKS)


def load_url_public_apis(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(PUBLIC_APIS)


def unpack_link_list(payload: bytes, dest: Path, ll: LinkList) -> Path:
    """Lay out the downloaded bytes (the raw file, or the kept files of a GitHub tarball with one top folder)
    in ``dest/<folder>``; the digest is checked before anything replaces an existing copy."""
    pat = re.compile(ll.include)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        out = Path(tmp) / ll.folder
        out.mkdir()
        if ll.raw_path is not None:
            (out / ll.raw_path).write_bytes(payload)
        else:
            _untar(payload, out, pat)
        blobs = _kept(out, ll)
        if not _pinned(blobs, ll):
            raise ValueError(f"{ll.url}: {len(blobs)} files, digest {_digest(blobs)} != pinned {ll.digest}")
        final = dest / ll.folder
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(out), final)
    return final


def _untar(archive: bytes, out: Path, pat: re.Pattern[str]) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            rel = "/".join(parts[1:])
            if not member.isfile() or len(parts) < 2 or ".." in parts or not pat.match(rel):
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            target = out.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read())


def fetch_link_list(
    ll: LinkList, dest: Path | None = None, url: str | None = None, timeout: float = 300.0
) -> Path:
    """Download the pinned commit's file or archive and keep the list's files in the extra-data folder."""
    import httpx

    dest = dest or extra_data_dir()
    have = dest / ll.folder
    if have.is_dir() and _pinned(_kept(have, ll), ll):
        return have
    resp = httpx.get(url or ll.url, follow_redirects=True, timeout=timeout)
    resp.raise_for_status()
    return unpack_link_list(resp.content, dest, ll)
