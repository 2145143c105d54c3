"""The training commands through the `phishlens` CLI (typer's CliRunner): prepare-base prints the pinned
sha, train's help works, and a bad config ends with a clear message, a non-zero code and no traceback.
(`train` itself reads the corpora and `evaluate` needs many rows: both too slow for a unit test.)"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from phishlens.clients.cli import app
from phishlens.training.cli import app as training_app

runner = CliRunner(env={"COLUMNS": "400"})  # wide: typer's error box would wrap the messages


def _json_line(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    assert lines, text
    return json.loads(lines[-1])


def test_prepare_base_prints_sha(smollm2_base):
    r = runner.invoke(app, ["prepare-base", "smollm2"])
    assert r.exit_code == 0, r.output
    info = _json_line(r.stdout)
    assert info == {
        "name": "smollm2",
        "path": str(smollm2_base.path),
        "sha256": smollm2_base.sha256,
        "architecture": "llama",
    }


def test_prepare_base_unknown_name_fails():
    r = runner.invoke(app, ["prepare-base", "nope"])
    assert r.exit_code != 0
    assert isinstance(r.exception, ValueError) and "unknown embedded base 'nope'" in str(r.exception)


@pytest.mark.parametrize("which", ["phishlens", "training"])
def test_train_help(which):
    r = runner.invoke(app if which == "phishlens" else training_app, ["train", "--help"])
    assert r.exit_code == 0, r.output
    for opt in ("--config", "--out", "--base", "--no-resume"):
        assert opt in r.output


def _assert_clean_failure(r, *needles: str) -> None:
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit)  # a usage error, not an escaped exception
    assert "Traceback" not in r.output
    text = " ".join(r.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())  # unbox, unwrap
    for n in needles:
        assert n in text, (n, r.output)


def test_train_unknown_config_is_a_clear_error():
    r = runner.invoke(app, ["train", "--config", "no-such-config"])
    _assert_clean_failure(r, "--config", "training config 'no-such-config' not found")


def test_train_invalid_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nlearning_rate = 1e-3\n')
    r = runner.invoke(app, ["train", "--config", str(bad)])
    _assert_clean_failure(r, "is invalid", "learning_rate", "Extra inputs are not permitted")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x\n')
    r = runner.invoke(app, ["train", "--config", str(broken)])
    _assert_clean_failure(r, "is invalid")


def test_train_checks_every_config_before_training(tmp_path):
    """A bad second config fails at once: the first one is not trained first (that would take hours)."""
    r = runner.invoke(app, ["train", "--config", "default", "--config", str(tmp_path / "missing.toml")])
    _assert_clean_failure(r, "missing.toml")


def test_calibrate_refuses_a_missing_bundle_and_a_bad_cap(tmp_path):
    r = runner.invoke(app, ["calibrate", str(tmp_path / "nope"), "--max-fpr", "0.05"])
    assert r.exit_code == 2 and "error:" in r.output and "nope" in r.output, r.output
    r = runner.invoke(app, ["calibrate", str(tmp_path), "--max-fpr", "1.5"])
    assert r.exit_code == 2 and "max-fpr" in r.output, r.output


@pytest.mark.data
def test_evaluate_names_the_fetch_step_when_a_training_only_corpus_is_missing(
    data_root, tmp_path, monkeypatch
):
    """The shipped default's mix lists Enron-Spam (fetched outside the data root): without it, `evaluate`
    (which trains the TF-IDF peer on that mix) names the corpus and the command, exit 2, no traceback."""
    from phishlens.training.commands.train import REPO
    from phishlens.training.data import splits as splits_module

    monkeypatch.setenv("PHISHLENS_EXTRA_DATA", str(tmp_path / "extra"))  # nothing fetched there
    monkeypatch.setenv("PHISHLENS_RECORD_CACHE", "0")  # a cached copy of the records would hide the absence
    monkeypatch.setattr(splits_module, "_CACHE", {})  # and so would the splits other tests memoised
    args = [
        "evaluate",
        str(REPO / "adapters" / "default"),
        "--from-manifests",
        "--out",
        str(tmp_path / "eval"),
    ]
    r = runner.invoke(app, [*args, "--data-root", str(data_root)])
    assert r.exit_code == 2, r.output
    assert "error: data:" in r.stderr and "email_enron1" in r.stderr and "phishlens data fetch" in r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "eval").exists()
