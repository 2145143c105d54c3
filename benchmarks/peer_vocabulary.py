"""The TF-IDF peer's vocabulary cap: how many terms tie at the cut, and what the stable cap costs.

    python benchmarks/peer_vocabulary.py [--mix configs/mixes/generalist-v4-links.toml] [--repeats 2]

sklearn's ``max_features`` keeps the most frequent terms with an unstable argsort, so terms tied at the cut
are chosen by the machine's sort kernel; the peer caps its vocabularies itself (``capped_vocabulary``, ties
broken by the term; session 20). First table, per analyzer: terms with df >= 2, the cap, the total count
at the cut, and how many terms tie there (how many of them the cap keeps). Second table: the seconds to
vectorize the mix's training texts with sklearn's ``max_features`` and with the peer's own cap, run
alternately in one process (ratios, not absolute times, are what carry over). About 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAPS = {"word": ((1, 2), 50_000), "char": ((3, 5), 100_000)}  # the peer's defaults (fit_tfidf)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", default="configs/mixes/generalist-v4-links.toml")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.model.tfidf import _fit_vectorizer, head_tail, term_counts

    mix = build_mix(load_mix(REPO / args.mix), load_splits())
    texts = [head_tail(r.text, 4000) for r in mix.train]

    print(f"{mix.spec.name}: {len(texts)} training texts\n")
    print("| analyzer | terms (df >= 2) | cap | count at the cut | terms tied there | of them kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for analyzer, (ngrams, cap) in CAPS.items():
        analyze = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True).build_analyzer()
        tf, df = term_counts([analyze(t) for t in texts])
        counts = np.sort(np.array([tf[t] for t in tf if df[t] >= 2]))[::-1]
        if len(counts) <= cap:
            print(f"| {analyzer} | {len(counts)} | {cap} | – | 0 (under the cap) | – |")
            continue
        at_cut = counts[cap - 1]
        tied, above = int((counts == at_cut).sum()), int((counts > at_cut).sum())
        print(f"| {analyzer} | {len(counts)} | {cap} | {at_cut} | {tied} | {cap - above} |")

    def sklearn_cap():
        union = FeatureUnion(
            [
                (a, TfidfVectorizer(analyzer=a, ngram_range=n, sublinear_tf=True, min_df=2, max_features=c,
                                    lowercase=True, dtype=np.float32))
                for a, (n, c) in CAPS.items()
            ]
        )  # fmt: skip
        return union.fit_transform(texts)

    def own_cap():
        return _fit_vectorizer(texts, CAPS["word"][1], CAPS["char"][1])[1]

    seconds: dict[str, list[float]] = {"sklearn max_features": [], "capped_vocabulary": []}
    for _ in range(args.repeats):
        for name, f in (("sklearn max_features", sklearn_cap), ("capped_vocabulary", own_cap)):
            t0 = time.perf_counter()
            f()
            seconds[name].append(time.perf_counter() - t0)
    base = float(np.median(seconds["sklearn max_features"]))
    print("\n| vocabulary cap | median s (runs) | ratio to sklearn |")
    print("|---|---:|---:|")
    for name, s in seconds.items():
        med = float(np.median(s))
        print(f"| {name} | {med:.1f} ({len(s)}) | {med / base:.2f} |")


if __name__ == "__main__":
    main()
