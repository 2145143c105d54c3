"""Fits of one recipe vs their soup (the mean of their LoRA deltas, one adapter) vs their ensemble (the mean
of their log-odds, n passes per text), on sources none of them saw.

    python benchmarks/soup.py --fit adapters/default --fit runs/default-v13-fit101 \\
        --fit runs/default-v13-fit202 --soup runs/default-v13-soup3 [--per-label 200]

The fits differ only in the fit seed (docs/eval/experiments.md, "The fit seed's noise"); the soup is
`phishlens soup` of them. Every row picks its cut by the served rule (`choose_threshold` at the fits'
`max_fpr`) on the shared validation rows only; the unseen sets of `phishlens evaluate --protocol unseen` only
score it. Cells: F1 (FPR) ROC-AUC per unseen style. A second table counts each fit's unseen errors at its
served cut and how many every fit shares. With PHISHLENS_STATE_CACHE warm it takes a few minutes per adapter
on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from threshold_rules import print_header, rates, score_validation_and_unseen

from phishlens.training.model.calibration import choose_threshold


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, action="append", required=True, help="repeatable: the soup's fits")
    ap.add_argument("--soup", type=Path, required=True)
    ap.add_argument("--per-label", type=int, default=200)
    args = ap.parse_args()

    fits = [score_validation_and_unseen(p, args.per_label) for p in args.fit]
    soup = score_validation_and_unseen(args.soup, args.per_label)
    cap = fits[0].bundle.manifest.calibration.max_fpr
    yv = np.array([r.y for r in fits[0].val])
    styles = sorted(fits[0].unseen)
    for sc in fits[1:] + [soup]:  # the rows compared must be the same texts
        assert [r.uid for r in sc.val] == [r.uid for r in fits[0].val], "validation rows differ"
    # each row: name -> (validation P, style -> unseen P)
    fit_names = [f"fit {p.name}" for p in args.fit]
    rows: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {
        name: (sc.pv, {s: sc.unseen[s][0] for s in styles}) for name, sc in zip(fit_names, fits)
    }
    mean_logit = lambda ps: 1 / (1 + np.exp(-np.mean([_logit(p) for p in ps], axis=0)))  # noqa: E731
    rows[f"ensemble of {len(fits)} (mean log-odds)"] = (
        mean_logit([sc.pv for sc in fits]),
        {s: mean_logit([sc.unseen[s][0] for sc in fits]) for s in styles},
    )
    rows[f"soup {args.soup.name}"] = (soup.pv, {s: soup.unseen[s][0] for s in styles})
    y = {s: fits[0].unseen[s][1] for s in styles}
    cuts = {name: choose_threshold(pv, yv, cap) for name, (pv, _) in rows.items()}  # the served rule, per row

    print(f"validation cap FPR ≤ {cap}, {len(yv)} validation rows; unseen {args.per_label}/label/style\n")
    print_header(["model", "threshold"], "unseen {s} F1 (FPR) AUC", ["macro F1", "macro AUC"], styles)
    for name, (_, pu) in rows.items():
        t = cuts[name]
        cells = [(*rates(pu[s], y[s], t), roc_auc_score(y[s], pu[s])) for s in styles]
        print(
            f"| {name} | {t:.3f} | "
            + " | ".join(f"{f1:.3f} ({fpr:.2f}) {auc:.3f}" for f1, fpr, auc in cells)
            + f" | {np.mean([c[0] for c in cells]):.3f} | {np.mean([c[2] for c in cells]):.3f} |"
        )
    shipped = soup.bundle.manifest.calibration.threshold
    print(f"\nsoup manifest threshold {shipped:.3f} (the served rule above recomputes it)")

    # Do the fits fail on the same texts? Averaging can only help where their errors differ.
    wrong = {n: {s: (rows[n][1][s] >= cuts[n]) != (y[s] == 1) for s in styles} for n in fit_names}
    print("\nunseen errors of the fits at their served cuts: how many, and how many all fits share\n")
    print_header(["style"], "{s}", [], [*fit_names, "made by every fit", "by any fit"])
    for s in styles:
        each = [wrong[n][s] for n in fit_names]
        every, some = np.logical_and.reduce(each), np.logical_or.reduce(each)
        print(
            f"| {s} | "
            + " | ".join(str(int(w.sum())) for w in each)
            + f" | {int(every.sum())} ({every.sum() / max(some.sum(), 1):.0%} of any) | {int(some.sum())} |"
        )


if __name__ == "__main__":
    main()
