"""Ship bundles to a fleet: a lock file of bundle sha256s, and a fetch step that verifies before serving.

A deployment names the bundles it serves and their content hashes
(`training.contract.bundle.content_sha256`, the same hash every response and metric carries) in a
lock file::

    {"format": 1, "bundles": {"specialist-sms": "<64 hex>", ...}}

`fetch` copies each listed bundle from a bundle store — a directory (a PersistentVolume) or an fsspec URL
(``s3://bucket/prefix``, ``gs://…`` with the `s3fs` / `gcsfs` package installed) — into a local directory,
checks it (`load_bundle`: JSON and safetensors only, a valid manifest) and its sha256 against the lock, and
only then moves it to its final name; any mismatch exits non-zero and leaves nothing under that name, so the
Kubernetes init container that runs it keeps the pod from ever serving an unverified bundle.

    python -m phishlens.training.bundle_sync lock adapters/specialist-sms adapters/default --out bundles.json
    python -m phishlens.training.bundle_sync fetch --lock bundles.json \
        --source s3://models/phishlens --dest /adapters
    python -m phishlens.training.bundle_sync verify --lock bundles.json /adapters
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from phishlens.training.contract.bundle import BundleError, content_sha256, load_bundle

LOCK_FORMAT = 1


class LockError(ValueError):
    """A lock file that cannot be used (unreadable, wrong format, bad names or hashes)."""


@dataclass(frozen=True)
class Mismatch:
    name: str
    reason: str


def read_lock(path: Path) -> dict[str, str]:
    """bundle name → expected content sha256, validated."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LockError(f"cannot read lock file {path}: {e}") from e
    if (
        not isinstance(raw, dict)
        or raw.get("format") != LOCK_FORMAT
        or not isinstance(raw.get("bundles"), dict)
    ):
        raise LockError(f'{path}: expected {{"format": {LOCK_FORMAT}, "bundles": {{name: sha256}}}}')
    bundles: dict[str, str] = raw["bundles"]
    for name, sha in bundles.items():
        if (
            not name
            or "/" in name
            or name.startswith(".")
            or not isinstance(sha, str)
            or len(sha) != 64
            or any(c not in "0123456789abcdef" for c in sha)
        ):
            raise LockError(f"{path}: bad entry {name!r}: {sha!r} (a plain bundle name and a 64-hex sha256)")
    if not bundles:
        raise LockError(f"{path}: lists no bundle")
    return bundles


def lock(bundle_dirs: list[Path]) -> dict:
    """The lock document for these bundle directories (each validated, named by its directory)."""
    out: dict[str, str] = {}
    for d in bundle_dirs:
        b = load_bundle(d)
        out[Path(d).name] = b.sha256
    return {"format": LOCK_FORMAT, "bundles": dict(sorted(out.items()))}


def verify_one(path: Path, name: str, expected: str) -> Mismatch | None:
    if not path.is_dir():
        return Mismatch(name, f"missing ({path} is not a directory)")
    try:
        load_bundle(path)
    except BundleError as e:
        return Mismatch(name, f"invalid bundle: {e}")
    got = content_sha256(path)
    if got != expected:
        return Mismatch(name, f"sha256 {got} differs from the lock's {expected}")
    return None


def verify(root: Path, expected: dict[str, str]) -> list[Mismatch]:
    """Every locked bundle under `root`, valid and at its sha256 (empty list: all good)."""
    return [m for name, sha in expected.items() if (m := verify_one(root / name, name, sha)) is not None]


def fetch(source: str, dest: Path, expected: dict[str, str]) -> list[Mismatch]:
    """Copy, verify, then publish each locked bundle under `dest`; a failed one is removed, never
    published."""
    import fsspec  # a dependency of huggingface_hub/datasets; s3fs/gcsfs add s3:// and gs://

    fs, base = fsspec.core.url_to_fs(source)
    base = base.rstrip("/")
    dest.mkdir(parents=True, exist_ok=True)
    problems: list[Mismatch] = []
    for name, sha in expected.items():
        final, partial = dest / name, dest / f".partial-{name}"
        shutil.rmtree(partial, ignore_errors=True)
        src = f"{base}/{name}"
        try:
            files = [f for f in fs.find(src) if not fs.isdir(f)]
        except (OSError, ValueError) as e:
            problems.append(Mismatch(name, f"cannot list {source}/{name}: {e}"))
            continue
        if not files:
            problems.append(Mismatch(name, f"not found in the bundle store {source}"))
            continue
        try:
            for f in files:
                rel = f[len(src) :].lstrip("/")
                target = partial / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f, str(target))
        except OSError as e:
            shutil.rmtree(partial, ignore_errors=True)
            problems.append(Mismatch(name, f"copy failed: {e}"))
            continue
        bad = verify_one(partial, name, sha)
        if bad is not None:
            shutil.rmtree(partial, ignore_errors=True)
            problems.append(bad)
            continue
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    return problems


# ---- command line ------------------------------------------------------------------------------------------
app = typer.Typer(
    help="Lock, fetch and verify the bundles a deployment serves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LockOpt = Annotated[Path, typer.Option("--lock", help='Lock file: {"format": 1, "bundles": {name: sha256}}.')]


def _report(problems: list[Mismatch], ok_names: list[str]) -> None:
    for m in problems:
        typer.echo(f"error: bundle {m.name}: {m.reason}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"verified {len(ok_names)} bundle(s): {', '.join(ok_names)}")


def _read(lock_file: Path) -> dict[str, str]:
    try:
        return read_lock(lock_file)
    except LockError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("lock")
def lock_cmd(
    bundles: Annotated[list[Path], typer.Argument(help="Bundle directories.")],
    out: Annotated[Path | None, typer.Option(help="Write here (default: stdout).")] = None,
) -> None:
    """Write the lock file for these bundles (their content sha256, as the server reports them)."""
    try:
        doc = json.dumps(lock(bundles), indent=2) + "\n"
    except BundleError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if out is None:
        typer.echo(doc, nl=False)
    else:
        out.write_text(doc)


@app.command("verify")
def verify_cmd(
    root: Annotated[Path, typer.Argument(help="Directory holding the bundles.")], lock_file: LockOpt
) -> None:
    """Check every locked bundle under ROOT is a valid bundle at its locked sha256 (exit 1 otherwise)."""
    expected = _read(lock_file)
    _report(verify(root, expected), sorted(expected))


@app.command("fetch")
def fetch_cmd(
    lock_file: LockOpt,
    source: Annotated[
        str,
        typer.Option(
            help="Bundle store: a directory or an fsspec URL (s3://…, gs://…) holding <name>/ per bundle."
        ),
    ],
    dest: Annotated[Path, typer.Option(help="Where verified bundles go (the server's adapter root).")],
) -> None:
    """Copy each locked bundle from SOURCE, verify it, then publish it under DEST (exit 1 on any mismatch)."""
    expected = _read(lock_file)
    _report(fetch(source, dest, expected), sorted(expected))


if __name__ == "__main__":
    app()
