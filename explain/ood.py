"""Per-text out-of-distribution score against an adapter's drift reference (DESIGN.md §6, issue 13 item 4).

The score is the one the drift monitor has always histogrammed: the mean cosine distance of the text's
MiniLM embedding to its `knn_k` nearest reference embeddings, divided by the reference's `ood_scale` (the
leave-one-out 99th percentile of the reference's own kNN distances), so 1.0 = "as far out as the
reference's 1 % farthest rows".

The flag threshold is computed from the reference itself, at load: the (1 - flag_rate) quantile of the
leave-one-out scores of the stored reference vectors, scored exactly as a live text is (each against all
the others). So `flag_rate` of the reference rows are flagged by construction: a false-flag rate on
in-distribution text, the analogue of the drift thresholds' false-alarm rate. It needs nothing a format-2
reference lacks, so existing bundles get the flag without a rebuild.

One function for the server (request path, drift histogram) and the offline benchmark
(`training.generalization`), so the numbers measured offline are the ones a caller is served.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .drift import knn_distance
from .reference import EmbeddingRef

DEFAULT_FLAG_RATE = 0.05


@dataclass(frozen=True)
class OodVerdict:
    score: float  # kNN distance / ood_scale (1.0 = the reference's own 99th percentile)
    flagged: bool  # score > threshold
    threshold: float  # flags `flag_rate` of the reference rows


def ood_scores(embeddings: np.ndarray, ref: EmbeddingRef) -> np.ndarray:
    """[n, dim] unit vectors → [n] OOD scores against the reference (see module docstring)."""
    return knn_distance(np.asarray(embeddings), ref.vectors, ref.knn_k) / ref.ood_scale


def reference_scores(ref: EmbeddingRef, chunk: int = 512) -> np.ndarray:
    """Leave-one-out OOD score of every reference row (each against all the others), in chunks so the
    distance matrix never exceeds [chunk, n]."""
    v = ref.vectors.astype(np.float64)
    n = len(v)
    k = max(1, min(ref.knn_k, n - 1))
    out = np.empty(n)
    for s in range(0, n, chunk):
        d = 1.0 - v[s : s + chunk] @ v.T  # [c, n]
        d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf  # leave the row itself out
        out[s : s + chunk] = np.partition(d, k - 1, axis=1)[:, :k].mean(1)
    return out / ref.ood_scale


@dataclass(frozen=True)
class OodModel:
    """An adapter's reference embeddings with the flag threshold for `flag_rate` false flags on it."""

    ref: EmbeddingRef = field(repr=False)
    flag_rate: float
    threshold: float
    max_tokens: int  # the embedder's truncation the reference was built with (embed texts the same way)

    @classmethod
    def of(cls, ref: EmbeddingRef, flag_rate: float = DEFAULT_FLAG_RATE) -> OodModel:
        if not 0.0 < flag_rate < 1.0:
            raise ValueError(f"flag_rate must be in (0, 1), got {flag_rate}")
        if len(ref.vectors) < 2:
            raise ValueError("an OOD threshold needs at least 2 reference embeddings")
        thr = float(np.quantile(reference_scores(ref), 1.0 - flag_rate))
        return cls(ref, flag_rate, thr, ref.max_tokens)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        return ood_scores(embeddings, self.ref)

    def verdicts(self, embeddings: np.ndarray) -> list[OodVerdict]:
        t = self.threshold
        return [OodVerdict(float(s), bool(s > t), t) for s in self.scores(embeddings)]
