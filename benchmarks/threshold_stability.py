"""How far the served cut and the unseen F1 move between retrains of one recipe, per threshold rule.

    python benchmarks/threshold_stability.py --adapter runs/default-v13 --adapter runs/default-v13-fit101 ...
        [--per-label 200] [--max-fpr 0.05] [--resamples 200]

The adapters are fits of the same recipe with different fit seeds (docs/eval/experiments.md, "The fit seed's
noise"). Each rule picks its cut on the adapter's validation rows only; the unseen sets of `phishlens
evaluate --protocol unseen` only score it. Rules:

- served: `choose_threshold(max_fpr)` on all validation rows (what `phishlens train` ships; the first
  column checks that it reproduces the manifest's threshold);
- bootstrap mean / median: the same rule on `--resamples` label-stratified bootstrap resamples of the
  validation rows, averaged (a cut that depends less on the few legitimate rows near it);
- legit quantile: the (1 - max_fpr) quantile of the legitimate validation scores (the cap alone, no F1).

Prints one row per adapter and rule, then per rule the mean and the spread (max - min) over the adapters.
With PHISHLENS_STATE_CACHE warm it takes a few minutes per adapter on 2 cores.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threshold_rules import print_header, rates, score_validation_and_unseen

from phishlens.training.model.calibration import choose_threshold


def bootstrap_cuts(pv: np.ndarray, yv: np.ndarray, max_fpr: float, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(yv == 1), np.flatnonzero(yv == 0)
    cuts = []
    for _ in range(resamples):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        cuts.append(choose_threshold(pv[idx], yv[idx], max_fpr))
    return np.array(cuts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, action="append", required=True, help="repeatable")
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--max-fpr", type=float, default=0.05)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()

    cap = args.max_fpr
    # each rule: (validation scores, labels, the bootstrap resamples' cuts, drawn once per adapter) -> cut
    rules: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
        "served": lambda p, y, boot: choose_threshold(p, y, cap),
        "bootstrap mean": lambda p, y, boot: float(boot.mean()),
        "bootstrap median": lambda p, y, boot: float(np.median(boot)),
        "legit quantile": lambda p, y, boot: float(np.quantile(p[y == 0], 1.0 - cap)),
    }
    rows: dict[str, list[tuple[str, float, dict[str, tuple[float, float]]]]] = {r: [] for r in rules}
    styles: list[str] = []
    for path in args.adapter:
        sc = score_validation_and_unseen(path, args.per_label)
        yv = np.array([r.y for r in sc.val])
        styles = sorted(sc.unseen)
        boot = bootstrap_cuts(sc.pv, yv, cap, args.resamples, args.seed)
        for name, rule in rules.items():
            t = rule(sc.pv, yv, boot)
            rows[name].append((path.name, t, {s: rates(*sc.unseen[s], t) for s in styles}))
        shipped, here = sc.bundle.manifest.calibration.threshold, rows["served"][-1][1]
        print(f"{path}: manifest threshold {shipped:.3f}, served rule here {here:.3f}")

    n_fits = len(args.adapter)
    print(f"\n{n_fits} adapters, validation cap FPR ≤ {cap:g}, unseen {args.per_label}/label/style\n")
    print_header(["rule", "adapter", "threshold"], "unseen {s} F1 (FPR)", ["macro F1"], styles, text_cols=2)
    for name, per in rows.items():
        for adapter, t, r in per:
            print(
                f"| {name} | {adapter} | {t:.3f} | "
                + " | ".join(f"{r[s][0]:.3f} ({r[s][1]:.2f})" for s in styles)
                + f" | {np.mean([r[s][0] for s in styles]):.3f} |"
            )
    print()
    print_header(
        ["rule", "threshold range"], "{s} F1 mean (spread)", ["macro mean (spread)", "max FPR mean"], styles
    )
    for name, per in rows.items():
        ts = [t for _, t, _ in per]
        f1 = {s: [r[s][0] for _, _, r in per] for s in styles}
        macro = [np.mean([r[s][0] for s in styles]) for _, _, r in per]
        max_fpr = [max(r[s][1] for s in styles) for _, _, r in per]
        print(
            f"| {name} | {min(ts):.3f}-{max(ts):.3f} | "
            + " | ".join(f"{np.mean(v):.3f} ({max(v) - min(v):.3f})" for v in f1.values())
            + f" | {np.mean(macro):.3f} ({max(macro) - min(macro):.3f}) | {np.mean(max_fpr):.2f} |"
        )


if __name__ == "__main__":
    main()
