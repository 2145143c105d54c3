"""Enron-Spam enron1 (training/data/enron.py): pinned content, GitHub-tarball unpacking, loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from phishlens.training.data import enron as E
from phishlens.training.data import pinned as P
from phishlens.training.data.corpora_extra import EXTRA_DATA_ENV, ExtraDataMissing, extra_data_dir
from tests.static_http import github_tarball, serving

FETCHED = extra_data_dir() / E.ENRON1.folder
needs_copy = pytest.mark.skipif(
    not FETCHED.is_dir(),
    reason=f"{FETCHED} is not fetched (phishlens data fetch --only email_enron1; docs/data.md)",
)


def _tarball(files: dict[str, bytes], top: str = f"email_classification-{E.COMMIT}") -> bytes:
    return github_tarball({"README.md": b"readme", **files}, top)


def test_split_reads_the_subject_line():
    assert E._split("Subject: re : meter 1234\r\nhi daren ,\r\nsee below") == (
        "re : meter 1234",
        "hi daren ,\nsee below",
    )
    assert E._split("no subject line\nbody") == ("", "no subject line\nbody")


def test_missing_copy_names_the_fetch_step(monkeypatch, tmp_path):
    monkeypatch.setenv(EXTRA_DATA_ENV, str(tmp_path))
    with pytest.raises(ExtraDataMissing, match="phishlens data fetch --only email_enron1"):
        E.load_email_enron1(tmp_path)


def test_a_changed_copy_is_refused_and_an_existing_one_kept(monkeypatch, tmp_path):
    monkeypatch.setenv(EXTRA_DATA_ENV, str(tmp_path))
    (tmp_path / "enron1" / "ham").mkdir(parents=True)
    (tmp_path / "enron1" / "ham" / "0001.ham.txt").write_bytes(b"Subject: kept\nthe earlier copy")
    forged = _tarball({"enron1/ham/0001.ham.txt": b"Subject: hi\nforged", "enron1/spam/0002.spam.txt": b"x"})
    with pytest.raises(ValueError, match="digest"):
        P.unpack(forged, tmp_path, E.ENRON1)
    assert (tmp_path / "enron1" / "ham" / "0001.ham.txt").read_bytes() == b"Subject: kept\nthe earlier copy"
    with pytest.raises(ValueError, match="differ from the pinned copy"):
        E.load_email_enron1(tmp_path)


@needs_copy
def test_fetch_over_http_unpacks_the_pinned_files_and_they_load(monkeypatch, tmp_path):
    """A GitHub-style archive of the real files, served on 127.0.0.1: fetched, checked, unpacked, loaded."""
    files = {f"enron1/{rel}": data for rel, data in P.kept(FETCHED, E.ENRON1)}
    files["enron1/Summary.txt"] = b"Legitimate\n----------\n- Owner: farmer-d\n"
    dest = tmp_path / "extra"
    with serving({"archive.tar.gz": _tarball(files)}, tmp_path / "serve") as base:
        got = P.fetch(E.ENRON1, dest, url=f"{base}/archive.tar.gz")
    assert got == dest / "enron1" and P.digest(P.kept(got, E.ENRON1)) == E.ENRON1.digest
    assert not (got / "Summary.txt").exists()  # only the messages are kept
    monkeypatch.setenv(EXTRA_DATA_ENV, str(dest))
    recs = E.load_email_enron1(Path("/unused"))
    labels = {r.label for r in recs}
    assert labels == {"phishing", "legitimate"}
    assert all(r.source == "email_enron1" and r.style == "email" for r in recs)
    ham = [r for r in recs if r.original_label == "ham"]
    assert len(ham) == 3672 and all(r.label == "legitimate" for r in ham)
    # the subject line becomes the project's e-mail layout, not a body line
    assert ham[0].text.startswith("Subject: christmas tree farm pictures")


@needs_copy
def test_cli_fetch_only_enron1_checks_the_present_copy(monkeypatch, tmp_path):
    """`phishlens data fetch --only email_enron1` verifies a present copy without downloading it again."""
    from typer.testing import CliRunner

    from phishlens.clients import cli

    monkeypatch.setenv(EXTRA_DATA_ENV, str(FETCHED.parent))
    r = CliRunner().invoke(
        cli.app, ["data", "fetch", "--no-progress", "--only", "email_enron1", "--data-root", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert f"ok     email_enron1: {FETCHED}" in r.output


def test_unfetched_sources_names_only_missing_training_only_corpora(monkeypatch, tmp_path):
    from phishlens.training.data.corpora import unfetched_sources

    monkeypatch.setenv(EXTRA_DATA_ENV, str(tmp_path))  # nothing fetched; email_spamassassin is never checked
    missing = unfetched_sources(["email_spamassassin", "email_enron1"], tmp_path)
    assert (
        list(missing) == ["email_enron1"]
        and "phishlens data fetch --only email_enron1" in missing["email_enron1"]
    )
