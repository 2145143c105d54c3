"""Threshold rules on sources the adapter never saw: the F1-best validation cut vs cuts capped at a validation
false-positive rate, and which rule a nested (leave-one-style-out) selection would pick.

    python benchmarks/threshold_rules.py [--adapter adapters/default] [--per-label 200] [--caps 0.01,0.05]

Scores the adapter's validation rows (its mix, rebuilt and fingerprint-checked) and the unseen sets of
`phishlens evaluate --protocol unseen` (same held-out sources, seed and size) once, with the bundle's
temperature. Each rule picks its cut on the validation rows only (`choose_threshold`); the table shows
F1 and FPR per unseen style. The nested rows pick the rule by mean F1 on the two *other* styles' unseen
rows and report the held-out style, so no unseen row of a style chooses its own threshold. With
PHISHLENS_STATE_CACHE warm it takes a few minutes on 2 cores (docs/eval/experiments.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.training.data.records import STYLES


def rates(p: np.ndarray, y: np.ndarray, t: float | np.ndarray) -> tuple[float, float]:
    pred = p >= t
    tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1), fp / max(int((y == 0).sum()), 1)


@dataclass
class Scored:
    """One adapter's scores (its temperature applied) on its validation rows and on the unseen sets."""

    bundle: Any
    val: list[Any]  # validation records, rebuilt from the manifest's mix and seed
    sets: dict[str, Any]  # style -> unseen set (`unseen_sets`)
    pv: np.ndarray  # P(phishing) per validation row
    unseen: dict[str, tuple[np.ndarray, np.ndarray]]  # style -> (P(phishing), y)


def score_validation_and_unseen(adapter: Path, per_label: int) -> Scored:
    """Score the validation rows and the unseen sets of `phishlens evaluate --protocol unseen` once."""
    from phishlens.training.artifacts.build import validation_rows
    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.mixes import load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import held_out_of, unseen_sets

    bundle = load_bundle(adapter)
    m = bundle.manifest
    val = validation_rows(m)
    sets = unseen_sets(load_splits(None), held_out_of([load_mix(m.training_data.mix)]), per_label=per_label)

    def score(scorer: Any, rows: list[Any]) -> np.ndarray:
        return np.concatenate([scorer([r.text for r in rows[i : i + 64]]) for i in range(0, len(rows), 64)])

    for _, scorer in adapter_scorers([bundle]):  # the adapter is active only while it is yielded
        unseen = {
            s: (score(scorer, us.records), np.array([r.y for r in us.records])) for s, us in sets.items()
        }
        pv = score(scorer, val)
    return Scored(bundle, val, sets, pv, unseen)


def print_header(
    lead: list[str], per_style: str, tail: list[str], styles: list[str], text_cols: int = 1
) -> None:
    """A Markdown table header: `lead` columns, one `per_style` column per style (`{s}` = the style), `tail`;
    the first `text_cols` columns left-aligned, the rest right-aligned."""
    cells = lead + [per_style.format(s=s) for s in styles] + tail
    print("| " + " | ".join(cells) + " |")
    print("|" + "---|" * text_cols + "---:|" * (len(cells) - text_cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, default=Path("adapters/default"))
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--caps", default="0.01,0.02,0.05,0.1,0.2")
    args = ap.parse_args()

    from phishlens.training.contract.style import detect_style
    from phishlens.training.model.calibration import choose_threshold

    sc = score_validation_and_unseen(args.adapter, args.per_label)
    bundle, m, val, sets, pv, unseen = sc.bundle, sc.bundle.manifest, sc.val, sc.sets, sc.pv, sc.unseen
    yv = np.array([r.y for r in val])
    rules: dict[str, float | None] = {"F1-best": None} | {
        f"FPR ≤ {float(c):g}": float(c) for c in args.caps.split(",")
    }
    # one cut, or one per style as the input pipeline detects it (the server knows each text's style)
    sv = np.array([detect_style(r.text) for r in val])
    su = {st: np.array([detect_style(r.text) for r in us.records]) for st, us in sets.items()}
    cut: dict[str, dict[str, float] | float] = {}
    for name, cap in rules.items():
        cut[name] = choose_threshold(pv, yv, cap)
        per = {st: choose_threshold(pv[sv == st], yv[sv == st], cap) for st in STYLES if (sv == st).any()}
        cut[f"{name}, per style"] = per
    styles = [s for s in STYLES if s in unseen]

    def at(name: str, detected: np.ndarray) -> np.ndarray | float:
        c = cut[name]
        return np.array([c[d] for d in detected]) if isinstance(c, dict) else c

    res = {name: {s: rates(*unseen[s], at(name, su[s])) for s in styles} for name in cut}
    print(
        f"adapter {m.name} (sha256 {bundle.sha256[:12]}), served rule: max_fpr {m.calibration.max_fpr}, "
        f"threshold {m.calibration.threshold:.3f}; {len(val)} validation rows; "
        f"unseen {args.per_label}/label/style\n"
    )
    lead = ["rule (on validation)", "threshold", "validation FPR"]
    print_header(lead, "unseen {s} F1 (FPR)", ["macro F1", "max FPR"], styles)
    for name, t in cut.items():
        r = res[name]
        shown = " / ".join(f"{k} {v:.3f}" for k, v in t.items()) if isinstance(t, dict) else f"{t:.3f}"
        print(
            f"| {name} | {shown} | {rates(pv, yv, at(name, sv))[1]:.3f} | "
            + " | ".join(f"{r[s][0]:.3f} ({r[s][1]:.2f})" for s in styles)
            + f" | {np.mean([r[s][0] for s in styles]):.3f} | {max(r[s][1] for s in styles):.2f} |"
        )
    print(
        "\n| held-out style | rule chosen on the other styles (mean F1) | its F1 (FPR) on the held-out one |"
    )
    print("|---|---|---:|")
    nested = []
    for s in styles:
        others = [o for o in styles if o != s]
        best = max(cut, key=lambda n: np.mean([res[n][o][0] for o in others]))
        nested.append(res[best][s][0])
        print(f"| {s} | {best} | {res[best][s][0]:.3f} ({res[best][s][1]:.2f}) |")
    plain = np.mean([res["F1-best"][s][0] for s in styles])
    print(f"\nnested macro F1 {np.mean(nested):.3f} (F1-best rule: {plain:.3f})")


if __name__ == "__main__":
    main()
