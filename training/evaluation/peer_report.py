"""Train the TF-IDF peer on every mix and print its cross-domain matrix (Markdown, F1 per domain).

    python -m phishlens.training.evaluation.peer_report [--mixes-dir configs/mixes] [--data-root DIR]
        [--per-label 150] [--json out.json] [--png out.png]

Every peer is evaluated on the same per-source test samples (:func:`eval_sets`), at the threshold
tuned on its own mix's validation rows. Nothing is saved unless ``--json`` / ``--png`` ask for it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from phishlens.training.data.mixes import MIXES_DIR
from phishlens.training.evaluation.matrix import CrossDomainMatrix
from phishlens.training.evaluation.report import eval_sets, evaluate_scorer
from phishlens.training.model.tfidf import ARCHITECTURE, train_tfidf

DEFAULT_MIXES_DIR = MIXES_DIR


def peer_matrix(
    mix_paths: list[Path], data_root: str | None = None, per_label: int = 150, seed: int = 13, log=print
) -> CrossDomainMatrix:
    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits

    t0 = time.perf_counter()
    splits = load_splits(data_root, seed=seed)
    sets = eval_sets(splits, per_label=per_label, seed=seed)
    log(
        f"splits loaded in {time.perf_counter() - t0:.1f}s; "
        f"eval rows: {sum(len(v) for v in sets.values())} over {len(sets)} sources"
    )
    matrix = CrossDomainMatrix()
    for path in mix_paths:
        t1 = time.perf_counter()
        spec = load_mix(path)
        data = build_mix(spec, splits)
        peer = train_tfidf(data)
        report = evaluate_scorer(peer, peer.threshold, sets, spec.sources)
        matrix.add(spec.name, report, architecture=ARCHITECTURE, kind="tfidf")
        log(
            f"{spec.name}: train {len(data.train)} rows, validation {len(data.validation)}, "
            f"threshold {peer.threshold:.3f}, {time.perf_counter() - t1:.1f}s"
        )
    return matrix


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixes-dir", type=Path, default=DEFAULT_MIXES_DIR)
    ap.add_argument("--data-root", default=None, help="corpora root (default: PHISHLENS_DATA_ROOT / shared)")
    ap.add_argument("--per-label", type=int, default=150, help="test rows per source and label")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument(
        "--also",
        default="fpr",
        help="comma-separated extra metrics to print after F1 (e.g. fpr,recall,roc_auc; '' for none)",
    )
    args = ap.parse_args(argv)
    paths = sorted(args.mixes_dir.glob("*.toml"))
    if not paths:
        print(f"no mixes in {args.mixes_dir}", file=sys.stderr)
        return 2
    matrix = peer_matrix(
        paths, args.data_root, args.per_label, args.seed, log=lambda m: print(m, file=sys.stderr)
    )
    print(matrix.to_markdown())
    for metric in filter(None, (m.strip() for m in args.also.split(","))):
        print(matrix.to_markdown(metric))
    if args.json:
        print(f"wrote {matrix.to_json(args.json)}", file=sys.stderr)
    if args.png:
        print(f"wrote {matrix.to_png(args.png)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
