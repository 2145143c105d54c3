"""Legitimate URLs from curated link lists (training/data/link_lists.py): parsing, pinned content, fetch."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from phishlens.training.data import link_lists as L
from phishlens.training.data import pinned as P
from phishlens.training.data.corpora_extra import EXTRA_DATA_ENV, ExtraDataMissing, extra_data_dir
from tests.static_http import github_tarball, serving


def _fetched(ll: P.PinnedCopy) -> pytest.MarkDecorator:
    folder = extra_data_dir() / ll.folder
    why = f"{folder} is not fetched (phishlens data fetch --only {ll.source}; docs/data.md)"
    return pytest.mark.skipif(not folder.is_dir(), reason=why)


def _tarball(files: dict[str, bytes]) -> bytes:
    return github_tarball(files, "repo-abc")


def _spec(files: dict[str, bytes], **kw) -> P.PinnedCopy:
    """A link list pinned to exactly ``files`` (the kept ones)."""
    blobs = list(files.items())
    return P.PinnedCopy(
        source="url_test", repo="o/repo", commit="abc1234def", include=r"^books/[^/]+\.md$",
        n_files=len(blobs), digest=P.digest(blobs), **kw,
    )  # fmt: skip


def test_markdown_links_are_cleaned_capped_per_host_and_in_order():
    texts = [
        "* [Book](https://a.org/x.pdf) - [mirror](http://b.net/~u/y.html). See https://bare.org/ (bare)\n"
        "* [API](https://example.com/api) [local](http://localhost:8080/) [dup](https://a.org/x.pdf)",
        "[1](https://a.org/1) [2](https://a.org/2) [3](https://a.org/3) [ip](http://10.0.0.1/x)"
        " [end](https://c.io/z).",
    ]
    assert L.markdown_links(texts, per_host=3) == [
        "https://a.org/x.pdf",
        "http://b.net/~u/y.html",
        "https://a.org/1",
        "https://a.org/2",
        "https://c.io/z",
    ]


def test_missing_copy_names_the_fetch_step(monkeypatch, tmp_path):
    monkeypatch.setenv(EXTRA_DATA_ENV, str(tmp_path))
    for source, pins in L.LINK_LISTS.items():
        with pytest.raises(ExtraDataMissing, match=f"phishlens data fetch --only {source}"):
            L.load_link_list(*pins)


def test_tarball_keeps_only_the_listed_files_and_a_changed_copy_is_refused(monkeypatch, tmp_path):
    kept = {"books/a.md": b"[x](https://a.org/b.pdf)", "books/b.md": b"[y](https://b.org/)"}
    ll = _spec(kept)
    archive = _tarball(
        {**kept, "README.md": b"[r](https://r.org/)", "books/sub/c.md": b"[c](https://c.org/)"}
    )
    got = P.unpack(archive, tmp_path, ll)
    assert got == tmp_path / ll.folder
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == sorted(kept)
    monkeypatch.setenv(EXTRA_DATA_ENV, str(tmp_path))
    assert [r.text for r in L.load_link_list(ll)] == ["https://a.org/b.pdf", "https://b.org/"]
    forged = _tarball({"books/a.md": b"[x](https://evil.example/)", "books/b.md": kept["books/b.md"]})
    with pytest.raises(ValueError, match="digest"):
        P.unpack(forged, tmp_path, ll)
    assert (got / "books/a.md").read_bytes() == kept["books/a.md"]  # the earlier copy is kept
    (got / "books/a.md").write_bytes(b"edited")
    with pytest.raises(ValueError, match="differ from the pinned copy"):
        L.load_link_list(ll)


def test_a_raw_file_list_is_laid_out_under_its_path(tmp_path):
    ll = replace(_spec({"README.md": b"[a](https://a.org/)"}), include=r"^README\.md$", raw_path="README.md")
    assert ll.url == "https://raw.githubusercontent.com/o/repo/abc1234def/README.md"
    got = P.unpack(b"[a](https://a.org/)", tmp_path, ll)
    assert (got / "README.md").read_bytes() == b"[a](https://a.org/)"
    with pytest.raises(ValueError, match="digest"):
        P.unpack(b"[a](https://b.org/)", tmp_path / "other", ll)


# source -> (URLs, hosts) at least: the free-books and API lists are thousands of links; the four article
# lists a few hundred, hence one source
_AT_LEAST = {
    "url_free_programming_books": (1500, 1400),
    "url_public_apis": (1500, 1400),
    "url_awesome_articles": (550, 450),
}


@pytest.mark.parametrize("source", list(L.LINK_LISTS))
def test_real_list_loads_hundreds_of_hosts_at_most_three_each(source):
    pins = L.LINK_LISTS[source]
    if not all((extra_data_dir() / ll.folder).is_dir() for ll in pins):
        pytest.skip(f"{source} is not fetched (phishlens data fetch --only {source}; docs/data.md)")
    recs = L.load_link_list(*pins)
    hosts = Counter(urlsplit(r.text).hostname for r in recs)
    n_urls, n_hosts = _AT_LEAST[source]
    assert len(recs) > n_urls and len(hosts) > n_hosts
    assert max(hosts.values()) <= L.PER_HOST
    assert all(r.label == "legitimate" and r.style == "url" and r.source == source for r in recs)
    reserved = ("example.com", "example.org")
    assert not any(h in reserved or h.endswith(tuple("." + r for r in reserved)) for h in hosts)


@_fetched(L.PUBLIC_APIS)
def test_fetch_over_http_checks_and_lays_out_the_real_file(monkeypatch, tmp_path):
    """The pinned README served on 127.0.0.1 as GitHub serves it raw: fetched, checked, loaded."""
    readme = (P.local_dir(L.PUBLIC_APIS) / "README.md").read_bytes()
    dest = tmp_path / "extra"
    with serving({"README.md": readme}, tmp_path / "serve") as base:
        got = P.fetch(L.PUBLIC_APIS, dest, url=f"{base}/README.md")
    assert got == dest / L.PUBLIC_APIS.folder and P.digest(P.kept(got, L.PUBLIC_APIS)) == L.PUBLIC_APIS.digest
    monkeypatch.setenv(EXTRA_DATA_ENV, str(dest))
    assert len(L.load_url_public_apis(Path("/unused"))) == 1563


@pytest.mark.parametrize("source", list(L.LINK_LISTS))
def test_cli_fetch_only_a_link_list_checks_the_present_copy(monkeypatch, tmp_path, source):
    from typer.testing import CliRunner

    from phishlens.clients import cli

    pins = L.LINK_LISTS[source]
    if not all((extra_data_dir() / ll.folder).is_dir() for ll in pins):
        pytest.skip(f"{source} is not fetched (phishlens data fetch --only {source}; docs/data.md)")
    monkeypatch.setenv(EXTRA_DATA_ENV, str(extra_data_dir()))
    r = CliRunner().invoke(
        cli.app, ["data", "fetch", "--no-progress", "--only", source, "--data-root", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    # every pinned copy of the source, checked where it lies (a source may read several lists)
    assert f"ok     {source}: " + ", ".join(str(extra_data_dir() / ll.folder) for ll in pins) in r.output
    # no shared-root file was asked for: no "0 of 0 files" line, one line for the supplementary corpora
    assert r.output.splitlines()[-1] == "supplementary corpora: 1 of 1 in place"
    assert "files in place" not in r.output


def test_a_root_folder_keeps_only_its_own_files_and_no_parent_paths(tmp_path):
    """A copy of one repository folder (Enron's ``enron1/``): files beside it, or matching only outside it,
    are not kept, and a ``..`` member never escapes the folder."""
    kept = {"ham/a.txt": b"a", "spam/b.txt": b"b"}
    pin = P.PinnedCopy(
        source="t", repo="o/r", commit="abc1234", root="enron1", include=r"^(ham|spam)/[^/]+\.txt$",
        n_files=2, digest=P.digest(list(kept.items())), local="enron1",
    )  # fmt: skip
    archive = github_tarball(
        {
            **{f"enron1/{k}": v for k, v in kept.items()},
            "other/ham/c.txt": b"c",
            "ham/d.txt": b"d",
            "enron1/ham/sub/e.txt": b"e",
            "enron1/Summary.txt": b"s",
            "enron1/ham/../../../escape.txt": b"f",
        },
        "r-abc1234",
    )
    got = P.unpack(archive, tmp_path, pin)
    assert got == tmp_path / "enron1"
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == sorted(kept)
    assert not (tmp_path / "escape.txt").exists()


def test_cli_fetch_supplementary_names_every_training_only_corpus(monkeypatch, tmp_path):
    """`--supplementary` (what .ci/run calls) is every training-only corpus: a new one needs no new flag."""
    from typer.testing import CliRunner

    from phishlens.clients import cli

    extra = cli._supplementary_fetchers()
    assert {"url_top_sites", "email_enron1", *L.LINK_LISTS} == set(extra)
    from phishlens.training.data.corpora_extra import TOP_SITES_FILE
    from phishlens.training.data.enron import ENRON1

    pins = [ENRON1, *(ll for lls in L.LINK_LISTS.values() for ll in lls)]
    fetched = [extra_data_dir() / ll.folder for ll in pins] + [extra_data_dir() / TOP_SITES_FILE]
    if not all(path.exists() for path in fetched):
        pytest.skip("the supplementary corpora are not all fetched (phishlens data fetch --supplementary)")
    monkeypatch.setenv(EXTRA_DATA_ENV, str(extra_data_dir()))
    r = CliRunner().invoke(
        cli.app, ["data", "fetch", "--no-progress", "--supplementary", "--data-root", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert [line.split(":")[0] for line in r.output.splitlines() if line.startswith("ok ")] == [
        f"ok     {name}" for name in extra
    ]
    assert r.output.splitlines()[-1] == f"supplementary corpora: {len(extra)} of {len(extra)} in place"
    assert "files in place" not in r.output  # no shared-root corpus was asked for
