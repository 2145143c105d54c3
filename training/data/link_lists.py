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
shared data root: each is a :class:`~phishlens.training.data.pinned.PinnedCopy` (`phishlens data fetch --only
<source>` downloads the pinned commit's files and checks their content digest; the loader checks it again on
every use). docs/data.md lists provenance and licence; nothing is committed.
"""

from __future__ import annotations

import re
from pathlib import Path

from phishlens.training.data.corpora_extra import PER_HOST, capped_links
from phishlens.training.data.pinned import PinnedCopy, checked
from phishlens.training.data.records import Record
from phishlens.training.data.rows import short_records

# RFC 2606 / 6761 names used in examples ("https://example.com/api"): not real sites
_RESERVED = ("example.com", "example.org", "example.net", "localhost")
_MD_LINK = re.compile(r"\]\((https?://[^)\s]+)\)", re.I)


FREE_PROGRAMMING_BOOKS = PinnedCopy(
    source="url_free_programming_books",
    repo="EbookFoundation/free-programming-books",
    commit="5b277d20f623ce5b2889b16fc9dd5e266536f521",
    include=r"^(books|casts|courses|more)/[^/]+\.md$",
    n_files=120,
    digest="5b8d4676c487ed3e3f5a066c50e661a087107280c42b60ce73c84a4b1d9b6bf9",
)
PUBLIC_APIS = PinnedCopy(
    source="url_public_apis",
    repo="public-apis/public-apis",
    commit="c045a2eb505f0f8b7992bb4af53cc020f25003fd",
    include=r"^README\.md$",
    n_files=1,
    digest="5fbb9ad584a7536309de0f68520ca7dd6dcbbd68e5331523cc261b8561e2811a",
    raw_path="README.md",
)
LINK_LISTS = {ll.source: ll for ll in (FREE_PROGRAMMING_BOOKS, PUBLIC_APIS)}


def markdown_links(texts: list[str], per_host: int = PER_HOST) -> list[str]:
    """Distinct Markdown link targets in order, public hosts only, at most ``per_host`` per host."""
    return capped_links((raw for text in texts for raw in _MD_LINK.findall(text)), per_host, _reserved)


def _reserved(host: str) -> bool:
    return host == "" or any(host == r or host.endswith("." + r) for r in _RESERVED)


def load_link_list(ll: PinnedCopy) -> list[Record]:
    blobs = checked(ll)
    urls = markdown_links([data.decode("utf-8", errors="replace") for _, data in blobs])
    return short_records(((u, "legitimate") for u in urls), "url", ll.source)


def load_url_free_programming_books(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(FREE_PROGRAMMING_BOOKS)


def load_url_public_apis(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(PUBLIC_APIS)
