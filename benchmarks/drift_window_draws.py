"""How a window's texts are drawn moves the embedding drift statistic: resampled pools vs distinct texts.

    python benchmarks/drift_window_draws.py [--adapter specialist-url] [--windows 4000]
                                            [--per-class 50] [--legit 400]

Why `specialist-url` raised one false drift alert in benchmarks/drift_live.py (issue 19; README "Drift on
real scores"). For in-distribution windows of 200 texts of the adapter's single source (test split, real
MiniLM embeddings, cached like drift_live), the share of windows whose MMD² exceeds the served embedding
threshold (calibrated for a per-window false-alarm rate of alpha / k = 0.0005) and the 99.95 % quantile
relative to it, when the windows are drawn

* with replacement from drift_live's pool (``--per-class`` phishing + ``--legit`` legitimate texts);
* with replacement from a fresh pool of that size per window (is it this pool, or any pool that small?);
* with replacement from fresh pools of 225 / 1,000 texts per class;
* without replacement from the whole test split (distinct texts, as live traffic);
* as the threshold calibration draws them (explain.drift_calibration): with replacement from one half of
  the reference's rows, against the other half, for a few random splits (how much the quantile that sets
  the threshold depends on the split).

The statistic is taken at the window's true prevalence (no prior estimate: only the embeddings differ
between the rows). The adapter must have one source (drift_live's pool is then that source's test rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import drift_live as DL
from _common import machine

REPO = Path(__file__).resolve().parents[1]
PREVALENCES = (0.01, 0.05, 0.13, 0.5)
QUANTILE = 0.9995


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="specialist-url")
    ap.add_argument("--windows", type=int, default=4000, help="simulated windows per row and prevalence")
    ap.add_argument("--per-class", type=int, default=50, help="drift_live's phishing pool rows")
    ap.add_argument("--legit", type=int, default=400, help="drift_live's legitimate pool rows")
    ap.add_argument("--splits", type=int, default=4, help="random halvings of the reference rows")
    ap.add_argument("--window", type=int, default=200)
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "drift_live")
    args = ap.parse_args()

    from phishlens.explain.drift_stats import MMD
    from phishlens.explain.reference import ReferenceProfile
    from phishlens.training.contract.bundle import load_bundle
    from phishlens.training.data.splits import load_splits

    splits = load_splits()
    b = load_bundle(REPO / "adapters" / args.adapter)
    ref = ReferenceProfile.load(b.path / b.manifest.extras["reference"])
    if ref.embedding is None:
        raise SystemExit(f"{args.adapter}: the reference has no embedding sample")
    sources = list(b.manifest.training_data.sources)
    if len(sources) != 1:
        raise SystemExit(f"{args.adapter}: {len(sources)} training sources; this benchmark takes one")
    pool = DL.pools(b.manifest, splits, args.per_class, 0, 0, legit_per_class=args.legit)["in"]
    test = splits.rows("test", sources)
    embs = DL.embed_all(test, args.cache, ref.embedding.max_tokens)
    rows = [r for r in test if r.label != "phishing"] + [r for r in test if r.label == "phishing"]
    at = {r.uid: i for i, r in enumerate(rows)}
    held = np.stack([embs[r.uid] for r in rows]).astype(np.float64)
    neg_all = np.array([at[r.uid] for r in rows if r.label != "phishing"])
    pos_all = np.array([at[r.uid] for r in rows if r.label == "phishing"])
    neg_pool = np.array([at[r.uid] for r in pool if r.label != "phishing"])
    pos_pool = np.array([at[r.uid] for r in pool if r.label == "phishing"])
    served = ref.statistic("embedding")
    thr = ref.thresholds_for(args.window)[1]["embedding"]
    w, s_n = args.window, args.windows
    rng = np.random.default_rng(0)

    def draw(n1, neg, pos, replace=True) -> np.ndarray:
        """[S, w] rows: n1[s] phishing of `pos`, the rest legitimate of `neg`; `neg`/`pos` may be callables
        returning a fresh pool per window."""
        out = np.empty((len(n1), w), dtype=np.int64)
        for s, k in enumerate(n1):
            pn, pp = (neg() if callable(neg) else neg), (pos() if callable(pos) else pos)
            out[s] = np.concatenate(
                [rng.choice(pp, k, replace=replace), rng.choice(pn, w - k, replace=replace)]
            )
        return out

    def row(stat, rows_, draws, n1):
        st = np.concatenate(
            [stat.simulate(rows_, draws[i : i + 1000], n1[i : i + 1000] / w) for i in range(0, len(n1), 1000)]
        )
        dist = np.mean([len(np.unique(d)) for d in draws[:500]])
        return f"{np.mean(st > thr):.4f} | {np.quantile(st, QUANTILE) / thr:.2f} | {dist:.0f}"

    def fresh(ids, k):
        return lambda: rng.choice(ids, min(k, len(ids)), replace=False)

    v, y = ref.embedding.vectors.astype(np.float64), ref.embedding.labels
    table = []
    for q in PREVALENCES:
        n1 = rng.binomial(w, q, size=s_n)
        pct = f"{q:.0%}"
        table.append(
            (
                pct,
                f"drift_live pool ({len(pos_pool)} + {len(neg_pool)}), with replacement",
                row(served, held, draw(n1, neg_pool, pos_pool), n1),
            )
        )
        table.append(
            (
                pct,
                f"a fresh pool of {len(pos_pool)} + {len(neg_pool)} per window, with replacement",
                row(served, held, draw(n1, fresh(neg_all, len(neg_pool)), fresh(pos_all, len(pos_pool))), n1),
            )
        )
        for k in (225, 1000):
            table.append(
                (
                    pct,
                    f"a fresh pool of {k} per class per window, with replacement",
                    row(served, held, draw(n1, fresh(neg_all, k), fresh(pos_all, k)), n1),
                )
            )
        table.append(
            (
                pct,
                f"the whole test split ({len(pos_all)} + {len(neg_all)}), no text twice",
                row(served, held, draw(n1, neg_all, pos_all, replace=False), n1),
            )
        )
        for sp in range(args.splits):
            r_idx, h_idx = [], []
            for c in (0, 1):
                i = rng.permutation(np.flatnonzero(y == c))
                r_idx.append(i[: len(i) // 2])
                h_idx.append(i[len(i) // 2 :])
            fitted = MMD.fit(v[np.concatenate(r_idx)], y[np.concatenate(r_idx)], gamma=ref.embedding.gamma)
            h = np.concatenate(h_idx)
            neg_h, pos_h = np.arange(len(h_idx[0])), len(h_idx[0]) + np.arange(len(h_idx[1]))
            table.append(
                (
                    pct,
                    f"calibration's draws: reference half vs half, random split {sp + 1}",
                    row(fitted, v[h], draw(n1, neg_h, pos_h), n1),
                )
            )
    print(
        f"\nmachine: {machine()}; {args.adapter}, window {w}, {s_n} windows per row, embedding threshold "
        f"{thr:.5f} (calibrated per-window false-alarm rate 0.0005), statistic at the true prevalence\n"
    )
    print(
        f"| prevalence | windows drawn | share over threshold | {QUANTILE:.2%} quantile / threshold "
        "| distinct texts per window |"
    )
    print("|---|---|---:|---:|---:|")
    for pct, name, cells in table:
        print(f"| {pct} | {name} | {cells} |")


if __name__ == "__main__":
    main()
