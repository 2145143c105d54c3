"""Training mixes: which sources a model sees, which it never sees (held out), and how many rows.

A mix is a TOML file under ``configs/mixes/`` (``name``, ``sources``, ``held_out``,
``train_per_style_label``, ``val_per_style_label``, optional ``seed``). :func:`build_mix` draws, per
style of the mix and per label, ``min(cap, rows available for either label)`` rows from the train
(validation) split, so every style is balanced per class. A style's per-class quota is spread as evenly
as possible over the sources that have that class (a source with fewer rows gives its unused share to
the others). Phishing-only sources are thereby paired with ham from the style's other sources; a style
whose mix sources lack a class is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import tomllib

from phishlens.training.data.config import REPO_ROOT
from phishlens.training.data.corpora import SOURCES, check_sources
from phishlens.training.data.records import LABELS, STYLES, Record
from phishlens.training.data.splits import SplitSet

MIXES_DIR = REPO_ROOT / "configs" / "mixes"


class MixError(ValueError):
    """A mix definition is invalid (unknown source, held-out source used, a style lacking a class...)."""


@dataclass(frozen=True)
class MixSpec:
    name: str
    sources: tuple[str, ...]
    held_out: tuple[str, ...]
    train_per_style_label: int
    val_per_style_label: int
    seed: int = 13

    def __post_init__(self) -> None:
        if not self.sources:
            raise MixError(f"mix {self.name!r}: no sources")
        try:
            check_sources(self.sources)
            check_sources(self.held_out)
        except KeyError as e:
            raise MixError(f"mix {self.name!r}: {e}") from None
        if len(set(self.sources)) != len(self.sources):
            raise MixError(f"mix {self.name!r}: duplicate source ids in {self.sources}")
        both = sorted(set(self.sources) & set(self.held_out))
        if both:
            raise MixError(f"mix {self.name!r}: held-out source(s) {both} also listed in sources")
        if self.train_per_style_label < 1 or self.val_per_style_label < 0:
            raise MixError(f"mix {self.name!r}: caps must be train >= 1, validation >= 0")
        for style in self.styles:
            have = {lab for s in self.sources if SOURCES[s].style == style for lab in SOURCES[s].labels}
            missing = [lab for lab in LABELS if lab not in have]
            if missing:
                raise MixError(
                    f"mix {self.name!r}: style {style!r} has no source with label(s) {missing}; "
                    "pair phishing-only sources with ham from another source of the same style"
                )

    @property
    def styles(self) -> tuple[str, ...]:
        present = {SOURCES[s].style for s in self.sources}
        return tuple(s for s in STYLES if s in present)

    def sources_of(self, style: str) -> tuple[str, ...]:
        return tuple(s for s in self.sources if SOURCES[s].style == style)


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file() or len(p.parts) > 1:
        return p
    return MIXES_DIR / f"{name_or_path}.toml"


def available_mixes() -> list[str]:
    return sorted(p.stem for p in MIXES_DIR.glob("*.toml"))


def load_mix(name_or_path: str | Path) -> MixSpec:
    """A bare name resolves to ``configs/mixes/<name>.toml`` under the repo; else a path to a TOML file."""
    path = _resolve(name_or_path)
    if not path.is_file():
        raise MixError(f"mix {str(name_or_path)!r} not found ({path}); available: {available_mixes()}")
    with path.open("rb") as f:
        d = tomllib.load(f)
    known = {
        "name",
        "description",
        "sources",
        "held_out",
        "train_per_style_label",
        "val_per_style_label",
        "seed",
    }
    extra = sorted(set(d) - known)
    if extra:
        raise MixError(f"{path}: unknown key(s) {extra}")
    try:
        return MixSpec(
            name=str(d.get("name", path.stem)),
            sources=tuple(d["sources"]),
            held_out=tuple(d.get("held_out", ())),
            train_per_style_label=int(d["train_per_style_label"]),
            val_per_style_label=int(d["val_per_style_label"]),
            seed=int(d.get("seed", 13)),
        )
    except KeyError as e:
        raise MixError(f"{path}: missing key {e}") from None


@dataclass
class MixData:
    spec: MixSpec
    train: list[Record]
    validation: list[Record]

    def counts(self, split: str = "train") -> dict[tuple[str, str, str], int]:
        """(style, source, label) -> rows."""
        out: dict[tuple[str, str, str], int] = {}
        for r in getattr(self, split):
            k = (r.style, r.source, r.label)
            out[k] = out.get(k, 0) + 1
        return out


def allocate(quota: int, available: dict[str, int]) -> dict[str, int]:
    """Spread ``quota`` rows over sources as evenly as possible, capped by what each has.

    Water-filling: repeatedly give every unfilled source an equal share; remainders go to the sources
    listed first. Deterministic.
    """
    alloc = {s: 0 for s in available}
    left = min(quota, sum(available.values()))
    open_ = [s for s in available if available[s] > 0]
    while left > 0 and open_:
        share, rem = divmod(left, len(open_))
        for i, s in enumerate(open_):
            give = min(share + (1 if i < rem else 0), available[s] - alloc[s])
            alloc[s] += give
            left -= give
        open_ = [s for s in open_ if alloc[s] < available[s]]
    return alloc


def _draw(spec: MixSpec, splits: SplitSet, split: str, cap: int) -> list[Record]:
    out: list[Record] = []
    for style in spec.styles:
        srcs = spec.sources_of(style)
        avail = {lab: {s: splits.available(split, s, lab) for s in srcs} for lab in LABELS}
        per_label = min([cap] + [sum(avail[lab].values()) for lab in LABELS])
        for lab in LABELS:
            for s, n in allocate(per_label, avail[lab]).items():
                if n:
                    out += splits.sample(split, s, n, seed=spec.seed, labels=(lab,))
    out.sort(key=lambda r: hashlib.sha256(f"{spec.seed}:{spec.name}:{split}:{r.uid}".encode()).hexdigest())
    return out


def build_mix(spec: MixSpec, splits: SplitSet) -> MixData:
    """Train and validation rows of the mix: balanced per style and label, deterministic, shuffled."""
    missing = [s for s in spec.sources if s not in splits.by_source]
    if missing:
        raise MixError(
            f"mix {spec.name!r}: sources {missing} are not in the SplitSet (a supplementary "
            "corpus not fetched yet? run `phishlens data fetch`)"
        )
    return MixData(
        spec=spec,
        train=_draw(spec, splits, "train", spec.train_per_style_label),
        validation=_draw(spec, splits, "validation", spec.val_per_style_label),
    )
