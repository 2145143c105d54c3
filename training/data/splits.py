"""De-duplication (within and across sources) and stratified train/validation/test splits per source.

Policy (docs/data.md has the long form):

* uid = sha256 of :func:`phishlens.training.data.dedup.normalise_for_uid` (lower-case, whitespace
  collapsed, URLs -> one token for e-mail/SMS, trailing ``/`` dropped for URLs).
* A uid whose copies carry both labels (anywhere, within or across sources) is dropped everywhere.
* Otherwise the first copy is kept: sources are visited in :data:`DEDUP_PRIORITY` order, rows in file
  order. Small and held-out-candidate sources come first, so a cross-source duplicate is removed from
  the large training pool (e.g. the ~2.5 k Hannousse phishing URLs inside PhishTank stay in
  ``url_hannousse`` and leave ``url_phishtank_iscx``).
* Every uid therefore lives in exactly one (source, split): no test row can be seen in training.
* Split: per source and label, rows ordered by sha256(f"{seed}:{uid}") (independent of load order),
  cut 0.8 / 0.1 / 0.1 (rounded; test takes the rest).

``python -m phishlens.training.data.splits`` prints the per-source per-split counts.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from phishlens.training.data.config import data_root as _default_root
from phishlens.training.data.corpora import SOURCES, check_sources, load_sources
from phishlens.training.data.dedup import normalise_for_uid, uid_for  # re-exported
from phishlens.training.data.records import LABELS, Record

__all__ = [
    "DEDUP_PRIORITY",
    "SPLITS",
    "DedupStats",
    "SplitSet",
    "dedup_records",
    "load_all_records",
    "make_splits",
    "load_splits",
    "normalise_for_uid",
    "uid_for",
]

SPLITS: tuple[str, str, str] = ("train", "validation", "test")

# Who keeps a cross-source duplicate: first listed wins. Held-out candidates and small sources first.
DEDUP_PRIORITY: tuple[str, ...] = (
    "email_nazario_recent",
    "email_lingspam",
    "email_greco_human",
    "email_greco_llm",
    "email_llm_multigen",
    "email_spamassassin",
    "email_nazario_classic",
    "email_enron1",
    "sms_smishtank",
    "sms_exais",
    "sms_uci",
    "url_hannousse",
    "url_spamassassin_ham",
    "url_top_sites",
    "url_free_programming_books",
    "url_public_apis",
    "url_awesome_articles",
    "url_phishtank_iscx",
)
assert set(DEDUP_PRIORITY) == set(SOURCES), "DEDUP_PRIORITY must list every source"


def _h(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class DedupStats:
    """What de-duplication removed, per source."""

    rows_in: dict[str, int] = field(default_factory=dict)
    within_source: dict[str, int] = field(default_factory=dict)  # later copies inside the same source
    cross_source: dict[str, int] = field(default_factory=dict)  # removed: an earlier source keeps it
    label_conflict: dict[str, int] = field(default_factory=dict)  # rows dropped: uid has both labels
    rows_out: dict[str, int] = field(default_factory=dict)


def dedup_records(by_source: dict[str, list[Record]]) -> tuple[list[Record], DedupStats]:
    """De-duplicate within and across sources (policy in the module docstring)."""
    labels: dict[str, set[str]] = defaultdict(set)
    for recs in by_source.values():
        for r in recs:
            labels[r.uid].add(r.label)
    conflicted = {u for u, ls in labels.items() if len(ls) > 1}
    order = [s for s in DEDUP_PRIORITY if s in by_source] + [s for s in by_source if s not in DEDUP_PRIORITY]
    stats = DedupStats()
    owner: dict[str, str] = {}
    out: list[Record] = []
    for src in order:
        recs = by_source[src]
        stats.rows_in[src] = len(recs)
        w = c = k = kept = 0
        for r in recs:
            if r.uid in conflicted:
                k += 1
            elif r.uid in owner:
                if owner[r.uid] == src:
                    w += 1
                else:
                    c += 1
            else:
                owner[r.uid] = src
                out.append(r)
                kept += 1
        stats.within_source[src], stats.cross_source[src], stats.label_conflict[src] = w, c, k
        stats.rows_out[src] = kept
    return out, stats


def load_all_records(data_root: Path | None = None, sources: Iterable[str] | None = None) -> list[Record]:
    """Every source loaded (masked, laid out) and de-duplicated within and across sources."""
    return dedup_records(load_sources(sources, data_root))[0]


@dataclass
class SplitSet:
    """source -> split ('train' | 'validation' | 'test') -> records."""

    by_source: dict[str, dict[str, list[Record]]]
    seed: int = 13

    def _check(self, split: str, sources: Iterable[str]) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        check_sources(sources)
        missing = [s for s in sources if s not in self.by_source]
        if missing:
            raise KeyError(f"sources {missing} are not in this SplitSet")

    def rows(self, split: str, sources: Iterable[str] | None = None) -> list[Record]:
        srcs = list(self.by_source) if sources is None else list(sources)
        self._check(split, srcs)
        return [r for s in srcs for r in self.by_source[s][split]]

    def available(self, split: str, source: str, label: str) -> int:
        self._check(split, [source])
        return sum(1 for r in self.by_source[source][split] if r.label == label)

    def sample(
        self, split: str, source: str, per_label: int, seed: int = 13, labels: Iterable[str] = LABELS
    ) -> list[Record]:
        """Up to ``per_label`` rows of each label (all when fewer), deterministic, shuffled."""
        self._check(split, [source])
        if per_label < 0:
            raise ValueError("per_label must be >= 0")
        out: list[Record] = []
        for lab in labels:
            rows = [r for r in self.by_source[source][split] if r.label == lab]
            rows.sort(key=lambda r: _h(seed, "sample", source, r.uid))
            out += rows[:per_label]
        out.sort(key=lambda r: _h(seed, "order", r.uid))
        return out

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """source -> split -> label -> rows."""
        return {
            s: {sp: {lab: sum(1 for r in recs if r.label == lab) for lab in LABELS} for sp, recs in d.items()}
            for s, d in self.by_source.items()
        }

    def format_counts(self) -> str:
        head = (
            "| source | style | train phish / legit | validation phish / legit | test phish / legit | total |"
        )
        lines = [head, "|---|---|---|---|---|---|"]
        tot = defaultdict(int)
        for s, d in self.counts().items():
            cells = []
            n = 0
            for sp in SPLITS:
                p, lg = d[sp]["phishing"], d[sp]["legitimate"]
                tot[(sp, "phishing")] += p
                tot[(sp, "legitimate")] += lg
                n += p + lg
                cells.append(f"{p:,} / {lg:,}")
            lines.append(
                f"| {s} | {SOURCES[s].style if s in SOURCES else '?'} | " + " | ".join(cells) + f" | {n:,} |"
            )
        all_n = sum(tot.values())
        cells = [f"{tot[(sp, 'phishing')]:,} / {tot[(sp, 'legitimate')]:,}" for sp in SPLITS]
        lines.append("| **all** | | " + " | ".join(cells) + f" | {all_n:,} |")
        return "\n".join(lines)


def make_splits(
    records: Iterable[Record], seed: int = 13, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> SplitSet:
    """Stratified (by label) split per source; deterministic in (seed, uids)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    groups: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        groups[r.source][r.label].append(r)
    order = [s for s in SOURCES if s in groups] + sorted(s for s in groups if s not in SOURCES)
    by_source: dict[str, dict[str, list[Record]]] = {}
    for src in order:
        parts: dict[str, list[Record]] = {sp: [] for sp in SPLITS}
        for lab in LABELS:
            rows = sorted(groups[src].get(lab, []), key=lambda r: _h(seed, r.uid))
            n = len(rows)
            n_train = int(round(n * fractions[0]))
            n_val = min(n - n_train, int(round(n * fractions[1])))
            parts["train"] += rows[:n_train]
            parts["validation"] += rows[n_train : n_train + n_val]
            parts["test"] += rows[n_train + n_val :]
        for sp in SPLITS:  # deterministic, label-mixed order
            parts[sp].sort(key=lambda r: _h(seed, sp, r.uid))
        by_source[src] = parts
    return SplitSet(by_source=by_source, seed=seed)


_CACHE: dict[tuple[str, int], SplitSet] = {}


def load_splits(data_root: Path | None = None, seed: int = 13) -> SplitSet:
    """All sources, de-duplicated and split; memoised per (resolved data root, seed)."""
    root = Path(data_root).resolve() if data_root is not None else _default_root()
    key = (str(root), seed)
    if key not in _CACHE:
        _CACHE[key] = make_splits(load_all_records(root), seed=seed)
    return _CACHE[key]


def _main() -> None:
    import argparse
    import time

    ap = argparse.ArgumentParser(description="Per-source per-split row counts after masking and de-dup.")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    t0 = time.perf_counter()
    root = a.data_root or _default_root()
    recs, stats = dedup_records(load_sources(None, root))
    ss = make_splits(recs, seed=a.seed)
    print(f"data root: {root}  seed: {a.seed}  ({time.perf_counter() - t0:.1f} s)\n")
    print(ss.format_counts())
    print(
        "\n| source | rows loaded | within-source dups | cross-source dups removed | label conflicts | kept |"
    )
    print("|---|---|---|---|---|---|")
    for s in stats.rows_in:
        print(
            f"| {s} | {stats.rows_in[s]:,} | {stats.within_source[s]:,} | {stats.cross_source[s]:,} | "
            f"{stats.label_conflict[s]:,} | {stats.rows_out[s]:,} |"
        )


if __name__ == "__main__":
    _main()
