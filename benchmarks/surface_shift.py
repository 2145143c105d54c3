"""Does a verdict follow a corpus's preparation? Each adapter scores e-mail and SMS texts as served and
in their flattened form (same words, lower-cased, punctuation spaced: the look of Ling-Spam and Enron-Spam);
the table shows, per style and class, the mean P(phishing) before and after and how many verdicts flip at the
served threshold.

    python benchmarks/surface_shift.py --adapter adapters/default --adapter runs/default-v11 [--per-label 200]

Texts: each adapter's validation rows (its mix, rebuilt and fingerprint-checked) and the unseen sets of
`phishlens evaluate --protocol unseen` (same held-out sources, seed and size); only texts that flattening
changes are counted. An adapter that keys on the preparation moves legitimate and phishing texts alike
towards the class its flat-looking training rows had (issue 13, docs/eval/experiments.md, v11). A few
minutes on 2 cores with PHISHLENS_STATE_CACHE warm (flattened texts need their own lower-layer pass).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _scores(scorer, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    return np.concatenate([scorer(texts[i : i + 64]) for i in range(0, len(texts), 64)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, action="append", required=True)
    ap.add_argument("--per-label", type=int, default=200)
    args = ap.parse_args()

    from phishlens.training.artifacts.build import validation_rows
    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.augment import flatten
    from phishlens.training.data.mixes import load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import held_out_of, unseen_sets

    bundles = [load_bundle(p) for p in args.adapter]
    splits = load_splits(None)
    print(
        "| adapter | texts | style | class | n changed | mean P as served | mean P flattened "
        "| flips to phishing | flips to legitimate |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for bundle, (_, scorer) in zip(bundles, adapter_scorers(bundles)):
        m = bundle.manifest
        unseen = unseen_sets(splits, held_out_of([load_mix(m.training_data.mix)]), per_label=args.per_label)
        groups = {"validation": validation_rows(m)} | {
            "unseen": [r for st, us in sorted(unseen.items()) for r in us.records]
        }
        t = m.calibration.threshold
        for kind, rows in groups.items():
            for style in ("email", "sms"):
                for label in ("phishing", "legitimate"):
                    pairs = [
                        (r.text, f)
                        for r in rows
                        if r.style == style and r.label == label and (f := flatten(r.text)) != r.text
                    ]
                    if not pairs:
                        continue
                    p0 = _scores(scorer, [a for a, _ in pairs])
                    p1 = _scores(scorer, [b for _, b in pairs])
                    up = int(((p0 < t) & (p1 >= t)).sum())
                    down = int(((p0 >= t) & (p1 < t)).sum())
                    print(
                        f"| {m.name} | {kind} | {style} | {label} | {len(pairs)} | {p0.mean():.3f} | "
                        f"{p1.mean():.3f} | {up} ({up / len(pairs):.0%}) | {down} ({down / len(pairs):.0%}) |"
                    )


if __name__ == "__main__":
    main()
