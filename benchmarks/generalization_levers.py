"""Screen data levers for generalization with the TF-IDF peer (seconds per mix), before any LLM retrain.

    python benchmarks/generalization_levers.py [--per-label 200] [MIX ...]

For each mix (default: the experiment mixes in configs/mixes/experiments/ and configs/mixes/generalist.toml)
a TF-IDF + logistic-regression peer is trained on the mix (threshold on its validation rows) and scored on
every held-out source on its own (all splits, up to --per-label texts per label): F1 and FPR at the peer's
served threshold, and where a source has both classes its ROC-AUC (ranking, which a shared threshold moving
between mixes does not change). The table is docs/eval/experiments.md's screening table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import held_out_rows

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIXES = [
    "configs/mixes/experiments/generalist-v1.toml",
    "configs/mixes/experiments/generalist-v2-ham.toml",
    "configs/mixes/generalist-v2.toml",
    "configs/mixes/generalist-v2-x2.toml",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mixes", nargs="*", default=DEFAULT_MIXES)
    ap.add_argument("--per-label", type=int, default=200)
    args = ap.parse_args()

    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import held_out_of
    from phishlens.training.evaluation.metrics import binary_metrics
    from phishlens.training.model.tfidf import train_tfidf

    splits = load_splits()
    specs = [load_mix(REPO / m if not Path(m).is_absolute() else m) for m in args.mixes]
    held = held_out_of(specs)
    rows = held_out_rows(splits, held, args.per_label)
    print("| mix | threshold | " + " | ".join(f"{s} F1 / FPR / AUC" for s in held) + " |")
    print("|---|---:|" + "---:|" * len(held))
    for spec in specs:
        peer = train_tfidf(build_mix(spec, splits))
        cells = []
        for s in held:
            y = np.array([r.y for r in rows[s]])
            m = binary_metrics(y, peer.score([r.text for r in rows[s]]), peer.threshold)
            fpr = "–" if m["fpr"] is None else f"{m['fpr']:.2f}"
            auc = "" if m["roc_auc"] is None else f" / {m['roc_auc']:.3f}"
            cells.append(f"{m['f1']:.2f} / {fpr}{auc}")
        print(f"| {spec.name} | {peer.threshold:.2f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
