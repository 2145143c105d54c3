"""Do the frozen base's own features generalize better than the LoRA readout? A screen for issue 13.

    python benchmarks/frozen_probe.py [--adapter adapters/default] [--per-label 200] [--c 0.001,0.01,0.1]

A logistic regression on the frozen hidden states at the adapter's split layer (the input of its LoRA layers:
no adapter involved), pooled two ways (the last prompt token, where the served verdict is read, and the mean
over every position), is fitted on the adapter's own training rows (its mix, rebuilt and fingerprint-checked)
and scored on the unseen sets of `phishlens evaluate --protocol unseen` (same held-out sources, seed, size).
Every row's threshold follows the adapter's served rule (`choose_threshold` with its `max_fpr`) on the
validation rows only. The ensemble rows average log-odds: the adapter with the probe, with the TF-IDF peer
trained on the same rows (`fit_tfidf`), and all three (a hybrid with the classical peer, session 11). The
states come from the frozen-layer cache: with PHISHLENS_STATE_CACHE warm, about 5 minutes on 2 cores.
Result and its reading: docs/eval/experiments.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, default=Path("adapters/default"))
    ap.add_argument("--per-label", type=int, default=200)
    ap.add_argument("--c", default="0.001,0.01,0.1", help="inverse L2 strengths of the probe")
    args = ap.parse_args()

    from sklearn.linear_model import LogisticRegression

    from phishlens.explain.logit_lens import sigmoid
    from phishlens.training.artifacts.build import mix_rows
    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.mixes import load_mix
    from phishlens.training.data.records import STYLES
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import held_out_of, logit, unseen_sets
    from phishlens.training.evaluation.metrics import binary_metrics
    from phishlens.training.model.calibration import choose_threshold
    from phishlens.training.model.tfidf import fit_tfidf

    bundle = load_bundle(args.adapter)
    m = bundle.manifest
    train, val = mix_rows(m)
    sets = unseen_sets(
        load_splits(None), held_out_of([load_mix(m.training_data.mix)]), per_label=args.per_label
    )
    styles = [s for s in STYLES if s in sets]
    groups = {"train": train, "val": val} | {s: list(sets[s].records) for s in styles}
    y = {g: np.array([r.y for r in rows]) for g, rows in groups.items()}
    feats: dict[str, dict[str, np.ndarray]] = {"last": {}, "mean": {}}
    served: dict[str, np.ndarray] = {}
    for _, scorer in adapter_scorers([bundle]):
        for g, rows in groups.items():
            texts = [r.text for r in rows]
            hs = [h.float() for i in range(0, len(texts), 256) for h in scorer.states(texts[i : i + 256])]
            feats["last"][g] = np.stack([h[-1].numpy() for h in hs])
            feats["mean"][g] = np.stack([h.mean(0).numpy() for h in hs])
            if g != "train":
                served[g] = np.concatenate([scorer(texts[i : i + 64]) for i in range(0, len(texts), 64)])

    peer = fit_tfidf(train, val, max_fpr=m.calibration.max_fpr)
    tfidf = {g: peer.score([r.text for r in groups[g]]) for g in served}

    def mean_logit(*ps: np.ndarray) -> np.ndarray:
        return sigmoid(np.mean([logit(p) for p in ps], axis=0))  # logit clips 0 and 1

    def row(name: str, p: dict[str, np.ndarray]) -> str:
        t = choose_threshold(p["val"], y["val"], m.calibration.max_fpr)
        r = {s: binary_metrics(y[s], p[s], t) for s in styles}
        cells = " | ".join(f"{r[s]['f1']:.2f} ({r[s]['fpr']:.2f}) {r[s]['roc_auc']:.2f}" for s in styles)
        return f"| {name} | {t:.3f} | {cells} | {np.mean([r[s]['f1'] for s in styles]):.3f} |"

    print(
        f"adapter {m.name} (sha256 {bundle.sha256[:12]}), split layer {min(m.lora.layers)}, "
        f"{len(train)} train / {len(val)} validation rows, unseen {args.per_label}/label/style, "
        f"threshold rule max_fpr {m.calibration.max_fpr}\n"
    )
    print("| model | threshold | " + " | ".join(f"{s} F1 (FPR) AUC" for s in styles) + " | macro F1 |")
    print("|---|---:|" + "---:|" * (len(styles) + 1))
    print(row(f"{m.name} (served LoRA readout)", served))
    print(row("TF-IDF peer, same rows", tfidf))
    print(row("ensemble: served + TF-IDF peer", {g: mean_logit(served[g], tfidf[g]) for g in served}))
    for pool in ("last", "mean"):
        f = feats[pool]
        mu, sd = f["train"].mean(0), f["train"].std(0) + 1e-6
        for c in (float(v) for v in args.c.split(",")):
            clf = LogisticRegression(C=c, max_iter=5000).fit((f["train"] - mu) / sd, y["train"])
            p = {g: clf.predict_proba((x - mu) / sd)[:, 1] for g, x in f.items() if g != "train"}
            print(row(f"frozen probe, {pool} pooled, C={c:g}", p))
            if pool == "mean":
                ens = {g: mean_logit(served[g], p[g]) for g in p}
                print(row(f"ensemble: served + mean probe C={c:g}", ens))
                ens3 = {g: mean_logit(served[g], p[g], tfidf[g]) for g in p}
                print(row(f"ensemble: served + mean probe C={c:g} + TF-IDF peer", ens3))


if __name__ == "__main__":
    main()
