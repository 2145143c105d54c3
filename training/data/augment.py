"""Surface-form counterfactuals of training rows (issue 13: source fingerprints, minimal pairs).

Corpora differ in how their text was *prepared* as much as in what it says: some were lower-cased and
tokenised by their authors (punctuation set off by spaces, ``don ' t``), most keep the writer's case and
punctuation. Within a mix that preparation names the source (the generalist's validation rows decode their
source at 0.91, ``docs/diagnosis/report.md``), so a readout can learn "this preparation → this label" and
carry it to a source prepared differently. :func:`flatten` rewrites a text into the lower-cased, spaced
form with its words unchanged; :func:`augment_surface` swaps a fixed, seeded fraction of the training rows
of each class for that form, so the same words arrive in both forms under both labels.

Training rows only: validation (threshold, calibration, drift reference) and every evaluation set keep the
text as the input pipeline makes it, which is also what serving sees.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace

from pydantic import BaseModel, ConfigDict, Field

from phishlens.explain.minimal_pairs import flatten_surface
from phishlens.training.contract.masking import (
    PLACEHOLDER_DOMAIN,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_NAME,
    URL_TOKEN,
)

from .dedup import uid_for
from .records import Record, Style

# The masking placeholders stay whole, as the pipeline writes them, even where a corpus glued them to a word
# ("user@example.comcopyright"): the model reads them as one vocabulary (the v11 run used this pattern).
PLACEHOLDER_RE = re.compile(
    "|".join(re.escape(t) for t in (URL_TOKEN, PLACEHOLDER_EMAIL, PLACEHOLDER_DOMAIN))
    + rf"|\b{re.escape(PLACEHOLDER_NAME)}\b"
)


def flatten(text: str) -> str:
    """Lower-case, every punctuation mark set off by spaces, line breaks kept; masking placeholders and the
    e-mail layout's ``Subject:`` prefix unchanged (the diagnosis's ``flatten_surface`` edit, with the
    pipeline's placeholders kept)."""
    return flatten_surface(text, keep=PLACEHOLDER_RE)


def _picked(uid: str, seed: int, rate: float) -> bool:
    """A stable draw per row (independent of the rows' order and of the other rows)."""
    h = hashlib.sha256(f"surface:{seed}:{uid}".encode()).digest()
    return int.from_bytes(h[:8], "big") < rate * 2**64


def augment_surface(rows: Sequence[Record], rate: float, styles: Sequence[Style], seed: int) -> list[Record]:
    """`rows` with a seeded fraction `rate` of those in `styles` replaced by their :func:`flatten` form.

    Replacing (not adding) keeps the row count, the class balance and the step budget of the recipe, so a run
    with and without it differ in this lever only. A row whose flattened text is unchanged stays as it is.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"surface augmentation rate must be in [0, 1], got {rate}")
    out: list[Record] = []
    for r in rows:
        if rate > 0 and r.style in styles and _picked(r.uid, seed, rate):
            t = flatten(r.text)
            if t != r.text:
                r = replace(r, text=t, uid=uid_for(t, r.style))
        out.append(r)
    return out


class AugmentOptions(BaseModel):
    """A training config's ``[augment]`` table (off by default); recorded in the manifest's training config,
    so that the bundle's training rows can be rebuilt (and fingerprint-checked) from it."""

    model_config = ConfigDict(extra="forbid")
    surface_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Fraction of the training rows of `surface_styles` replaced by their :func:`flatten` form."""
    surface_styles: list[Style] = Field(default_factory=lambda: ["email", "sms"])

    def apply(self, rows: Sequence[Record], seed: int) -> list[Record]:
        return augment_surface(rows, self.surface_rate, self.surface_styles, seed)
