"""One record type for every corpus (the unit that splits, mixes, training and evaluation share)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Label = Literal["phishing", "legitimate"]
Style = Literal["email", "sms", "url"]
Split = Literal["train", "validation", "test"]

LABELS: tuple[Label, Label] = ("phishing", "legitimate")
STYLES: tuple[Style, ...] = ("email", "sms", "url")


@dataclass(frozen=True)
class Record:
    """One labelled text.

    `text` is what the model sees (after masking and layout); `source` names the corpus
    (e.g. ``sms_uci``); `original_label` keeps the corpus's own label (spam, smishing, ham, ...);
    `uid` is the sha256 of the normalised text, so duplicates across sources share it.
    """

    text: str
    label: Label
    style: Style
    source: str
    original_label: str
    uid: str

    @property
    def y(self) -> int:
        """1 for phishing (the positive class), 0 for legitimate."""
        return 1 if self.label == "phishing" else 0


def text_uid(normalised_text: str) -> str:
    return hashlib.sha256(normalised_text.encode("utf-8")).hexdigest()


def fingerprint(records: list[Record]) -> str:
    """sha256 over the exact rows (uid, label, source) in order: identifies a training set."""
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.uid}\t{r.label}\t{r.source}\n".encode())
    return h.hexdigest()
