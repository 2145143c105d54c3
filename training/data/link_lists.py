"""Legitimate URLs from public, curated link lists (issue 13, sessions 18 and 20).

The benign URL side of the generalist is ISCX's ~310 hosts, 2002-era links in SpamAssassin ham and 500 root
domains. Unseen legitimate URLs are deep links on hosts the adapter never saw (a PDF on a university site, an
article on a news site). Community-curated Markdown link lists, each a pinned commit of a public GitHub
repository with a permissive licence, add thousands of such hosts and path shapes:

- ``url_free_programming_books``: EbookFoundation/free-programming-books (CC BY 4.0), the lists under
  ``books/``, ``casts/``, ``courses/`` and ``more/`` (free books, courses and podcasts: university pages,
  PDFs, publishers, video sites in dozens of languages);
- ``url_public_apis``: public-apis/public-apis (MIT), ``README.md`` (documentation pages of ~1,400 APIs);
- ``url_awesome_articles``: the ``readme.md`` of four lists by Kevin Deldycke (CC0: awesome-falsehood,
  -iam, -billing, -engineering-team-management): articles, blog posts, papers and talks on hundreds of hosts,
  one source because each list alone is a few hundred links.

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
_KDELDYCKE = (  # (repository, commit, digest of its readme.md)
    ("awesome-falsehood", "8c968a36671972498de9720462f8cc0ee0743382",
     "00c1c4918d400ee7e5fb9202339901accbf615423b4ee1d012bd4221aad1c1b1"),
    ("awesome-iam", "9cc9f9662587c84d14a252f08ad9d3ce7da0eddc",
     "a498f79827e08d080703d9a807dbdc1863a8bbfe7cb86cfa621c42ce96634f78"),
    ("awesome-billing", "a38f76815b56f448e6311395e5b2c27b6274bca4",
     "a7d764787eb60ff5664ed7b6ec7525ef7f9a34b372e306bcf48c4a7b555b42d8"),
    ("awesome-engineering-team-management", "065e30c43f20006bc40d7c50ea6fc7e0d265779d",
     "ff75eb2d298da799711e5c21f0e71b5b40e619c80a1034d8ec7767bccf3c8648"),
)  # fmt: skip
AWESOME_ARTICLES = tuple(
    PinnedCopy(
        source="url_awesome_articles",
        repo=f"kdeldycke/{name}",
        commit=commit,
        include=r"^readme\.md$",
        n_files=1,
        digest=digest,
        raw_path="readme.md",
    )
    for name, commit, digest in _KDELDYCKE
)
# source id -> the pinned copies whose links it reads (the per-host cap spans all of them)
LINK_LISTS: dict[str, tuple[PinnedCopy, ...]] = {
    FREE_PROGRAMMING_BOOKS.source: (FREE_PROGRAMMING_BOOKS,),
    PUBLIC_APIS.source: (PUBLIC_APIS,),
    "url_awesome_articles": AWESOME_ARTICLES,
}


def markdown_links(texts: list[str], per_host: int = PER_HOST) -> list[str]:
    """Distinct Markdown link targets in order, public hosts only, at most ``per_host`` per host."""
    return capped_links((raw for text in texts for raw in _MD_LINK.findall(text)), per_host, _reserved)


def _reserved(host: str) -> bool:
    return host == "" or any(host == r or host.endswith("." + r) for r in _RESERVED)


def load_link_list(*lls: PinnedCopy) -> list[Record]:
    """The legitimate URL records of one source's pinned lists, in list order."""
    (source,) = {ll.source for ll in lls}
    texts = [data.decode("utf-8", errors="replace") for ll in lls for _, data in checked(ll)]
    return short_records(((u, "legitimate") for u in markdown_links(texts)), "url", source)


def load_url_free_programming_books(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(FREE_PROGRAMMING_BOOKS)


def load_url_public_apis(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(PUBLIC_APIS)


def load_url_awesome_articles(root: Path) -> list[Record]:  # noqa: ARG001 - not in the data root
    return load_link_list(*AWESOME_ARTICLES)
