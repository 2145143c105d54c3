"""`phishlens data fetch` against a local mirror served on loopback (these machines have no internet).

The "originals" are laid out like raw.githubusercontent.com (`<repo>/<commit>/<path>`) from the real corpus
files, which are byte-identical to the recorded GitHub blobs (checked here with git's blob hash), so the
test downloads the real bytes over real HTTP and verifies the real sha256s.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phishlens.clients import cli
from phishlens.training.data.downloads import FILES, select
from phishlens.training.data.fetch import sha256_of

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def served(tmp_path, data_root):
    """(base URL, folder it serves): GitHub-raw layout under gh/, a prepared data root under mirror/."""
    web = tmp_path / "web"
    for f in FILES:
        real = data_root / f.path
        mirror = web / "mirror" / f.path
        mirror.parent.mkdir(parents=True, exist_ok=True)
        mirror.symlink_to(real)
        if f.github is not None:
            gh = web / "gh" / f.github.repo / f.github.commit / f.github.path
            gh.parent.mkdir(parents=True, exist_ok=True)
            gh.symlink_to(real)
    handler = functools.partial(_Quiet, directory=str(web))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", web
    finally:
        server.shutdown()
        thread.join(10)


def fetch(*args: str):
    return runner.invoke(cli.app, ["data", "fetch", "--no-progress", *args], prog_name="phishlens")


@pytest.mark.data
def test_sources_table_matches_the_manifest_and_the_github_blobs(data_root):
    with (data_root / "MANIFEST.csv").open(newline="") as fh:
        manifest = {row["path"].removeprefix("data/"): row for row in csv.DictReader(fh)}
    assert {f.path for f in FILES} == set(manifest)
    for f in FILES:
        assert (f.sha256, f.bytes) == (manifest[f.path]["sha256"], int(manifest[f.path]["bytes"])), f.path
        if f.github is not None:  # the file is the original blob, byte for byte
            body = (data_root / f.path).read_bytes()
            blob = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
            assert blob == f.github.blob, f.path
    assert {f.source for f in FILES} >= {"sms_uci", "url_hannousse", "email_spamassassin"}


def test_docs_list_every_file_with_its_sha256():
    doc = (REPO / "docs" / "data.md").read_text()
    missing = [f.path for f in FILES if f.sha256 not in doc or f.path not in doc]
    assert not missing, f"docs/data.md does not list these files with their sha256: {missing}"


@pytest.mark.data
def test_fetch_from_the_original_sources(served, tmp_path, data_root):
    base, _ = served
    root = tmp_path / "corpora"
    r = fetch(
        "--only",
        "sms_uci",
        "--only",
        "url_hannousse",
        "--only",
        "email_greco_llm",
        "--github-raw",
        f"{base}/gh",
        "--data-root",
        str(root),
    )
    assert r.exit_code == 3, (
        r.output
    )  # greco_llm was converted by the curators: a manual step without a mirror
    lines = r.stdout.splitlines()
    assert lines[0] == f"data root: {root.resolve()}"
    for f in select(["sms_uci", "url_hannousse"]):
        assert f"ok     {f.path}: downloaded from {f.github.url(base + '/gh')}, sha256 verified" in lines
        assert sha256_of(root / f.path) == f.sha256
    greco = next(line for line in lines if "greco_llm_normalized.csv" in line)
    assert (
        greco.startswith("MANUAL ") and "--mirror" in greco and select(["email_greco_llm"])[0].sha256 in greco
    )
    assert not (root / select(["email_greco_llm"])[0].path).exists()
    assert (
        lines[-1] == "3 of 4 files in place (3 downloaded, 0 already there); 1 need a manual step; 0 failed"
    )

    # laid out where training reads it: the loaders give the same records as from the shared data root
    from phishlens.training.data.corpora import load_source

    assert load_source("url_hannousse", root) == load_source("url_hannousse", data_root)

    r = fetch("--only", "url_hannousse", "--github-raw", f"{base}/gh", "--data-root", str(root))
    assert r.exit_code == 0 and "already in place, sha256 verified" in r.stdout


@pytest.mark.data
def test_licence_step_is_named_and_accept_fetches(served, tmp_path):
    base, _ = served
    root = tmp_path / "corpora"
    r = fetch("--only", "url_phishtank2020_iscx2016", "--github-raw", f"{base}/gh", "--data-root", str(root))
    assert r.exit_code == 3
    assert r.stdout.count("MANUAL ") == 2 and "PhishTank's own terms of use" in r.stdout
    assert "--accept url_phishtank2020_iscx2016" in r.stdout and not (root / "raw").exists()
    r = fetch(
        "--only",
        "url_phishtank_iscx",
        "--accept",
        "url_phishtank2020_iscx2016",
        "--github-raw",
        f"{base}/gh",
        "--data-root",
        str(root),
    )
    assert r.exit_code == 0, r.output
    assert all(sha256_of(root / f.path) == f.sha256 for f in select(["url_phishtank_iscx"]))


@pytest.mark.data
def test_mirror_supplies_converted_files(served, tmp_path):
    base, _ = served
    root = tmp_path / "corpora"
    r = fetch(
        "--only",
        "email_greco_llm",
        "--only",
        "email_lingspam",
        "--accept",
        "email_lingspam",
        "--mirror",
        f"{base}/mirror",
        "--data-root",
        str(root),
    )
    assert r.exit_code == 0, r.output
    assert all(sha256_of(root / f.path) == f.sha256 for f in select(["email_greco_llm", "email_lingspam"]))


@pytest.mark.data
def test_tampered_or_missing_download_writes_nothing(served, tmp_path, data_root):
    base, web = served
    f = select(["url_hannousse"])[0]
    served_copy = web / "gh" / f.github.repo / f.github.commit / f.github.path
    served_copy.unlink()
    served_copy.write_bytes(
        (data_root / f.path).read_bytes().replace(b"phishing", b"phishinG", 1)
    )  # same size, other bytes
    root = tmp_path / "corpora"
    r = fetch("--only", "url_hannousse", "--github-raw", f"{base}/gh", "--data-root", str(root))
    assert r.exit_code == 1
    assert f"FAILED {f.path}: sha256 " in r.stdout and "differs from the recorded" in r.stdout
    assert not (root / f.path).exists() and not list((root / f.path).parent.glob("*.part"))
    r = fetch("--only", "url_hannousse", "--github-raw", f"{base}/nothing-here", "--data-root", str(root))
    assert r.exit_code == 1 and "404" in r.stdout and not (root / f.path).exists()


def test_unknown_source_is_a_usage_error(tmp_path):
    r = fetch("--only", "email_enron", "--data-root", str(tmp_path))
    assert r.exit_code == 2 and "unknown source(s) ['email_enron']" in r.stderr
