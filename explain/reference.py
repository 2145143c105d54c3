"""The drift reference profile of an adapter (DESIGN.md §3, §6), built from its validation rows.

Stored in the bundle as ``reference.json`` (versioned, ``format: 1``) plus ``reference.safetensors`` for the
embedding sample. It holds, per scalar feature, the reference decile edges and bin shares (PSI), a sorted
sample (KS, reference quantiles), thresholds calibrated per window size, the embedding sample with its
RBF bandwidth and OOD scale, and the reference's word document frequencies. No raw text is stored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import drift as D
from .style import STYLE_FEATURES, style_matrix, words

FORMAT = 1
SCALAR_FEATURES: tuple[str, ...] = ("score", "uncertainty") + STYLE_FEATURES
FEATURES: tuple[str, ...] = SCALAR_FEATURES + ("embedding",)  # the fixed `feature` label set
WINDOWS: tuple[int, ...] = (100, 200, 400)  # window sizes thresholds are calibrated for
EMBED_FILE = "reference.safetensors"
JSON_FILE = "reference.json"
MAX_WORDS = 3000
KNN_K = 5


class ReferenceError(ValueError):
    """A reference profile that cannot be used (unknown format, missing file, bad shape)."""


@dataclass(frozen=True)
class FeatureRef:
    edges: list[float]  # interior decile cut points (distinct)
    props: list[float]  # smoothed reference share per bin (len(edges) + 1)
    sample: list[float]  # sorted reference values

    @property
    def sorted(self) -> np.ndarray:
        return np.asarray(self.sample, dtype=np.float64)


@dataclass(frozen=True)
class EmbeddingRef:
    model: str
    dim: int
    max_tokens: int
    gamma: float  # RBF bandwidth (median heuristic)
    kyy: float  # off-diagonal mean of K(ref, ref), cached for MMD
    knn_k: int
    ood_scale: float  # leave-one-out 99th percentile of the reference's own kNN distance
    vectors: np.ndarray = field(repr=False, compare=False)  # [n, dim] float32 unit vectors


@dataclass(frozen=True)
class ReferenceProfile:
    adapter: str
    n_rows: int
    features: dict[str, FeatureRef]
    thresholds: dict[int, dict[str, float]]  # window size -> feature -> threshold
    false_alarm: dict[int, float]  # window size -> simulated false-alarm rate of the alert rule
    alpha: float
    words: dict[str, int]  # word -> number of reference texts containing it (top MAX_WORDS)
    embedding: EmbeddingRef | None = None
    format: int = FORMAT
    rule: str = "embedding over threshold, or >= 2 scalar features over threshold; window full"

    def thresholds_for(self, window: int) -> tuple[int, dict[str, float]]:
        """Thresholds for a live window: those calibrated for `window`, else for the largest calibrated size
        below it (conservative: smaller windows have higher thresholds), else the smallest one."""
        sizes = sorted(self.thresholds)
        below = [w for w in sizes if w <= window]
        w = below[-1] if below else sizes[0]
        return w, self.thresholds[w]

    # ---- files -------------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, str]:
        """Write reference.json (+ reference.safetensors); returns {role: file name} for manifest extras."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        doc: dict[str, Any] = {
            "format": self.format, "adapter": self.adapter, "n_rows": self.n_rows, "alpha": self.alpha,
            "rule": self.rule, "features": {k: asdict(v) for k, v in self.features.items()},
            "thresholds": {str(w): t for w, t in self.thresholds.items()},
            "false_alarm": {str(w): r for w, r in self.false_alarm.items()},
            "words": self.words, "embedding": None,
        }
        out = {"reference": JSON_FILE}
        if self.embedding is not None:
            e = self.embedding
            doc["embedding"] = {"model": e.model, "dim": e.dim, "max_tokens": e.max_tokens, "gamma": e.gamma,
                                "kyy": e.kyy, "knn_k": e.knn_k, "ood_scale": e.ood_scale, "file": EMBED_FILE}
            # float16 halves the bundle size; cosine distances move by < 1e-3
            save_file({"embeddings": e.vectors.astype(np.float16)}, str(directory / EMBED_FILE))
            out["reference_embeddings"] = EMBED_FILE
        tmp = directory / (JSON_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        tmp.replace(directory / JSON_FILE)
        return out

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        """Read reference.json (and the safetensors it names, from the same folder)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReferenceError(f"cannot read reference profile {path.name}: {e}") from e
        if doc.get("format") != FORMAT:
            raise ReferenceError(f"reference profile format {doc.get('format')!r} is not supported "
                                 f"(this server reads format {FORMAT})")
        emb = None
        if doc.get("embedding"):
            from safetensors.numpy import load_file

            e = doc["embedding"]
            fname = Path(e["file"]).name  # a bare file name in the bundle folder, never a path
            try:
                vec = load_file(str(path.parent / fname))["embeddings"].astype(np.float32)
            except (OSError, KeyError) as err:
                raise ReferenceError(f"reference embeddings {fname}: {err}") from err
            if vec.ndim != 2 or vec.shape[1] != e["dim"]:
                raise ReferenceError(f"reference embeddings have shape {vec.shape}, expected [n, {e['dim']}]")
            emb = EmbeddingRef(e["model"], e["dim"], e["max_tokens"], e["gamma"], e["kyy"], e["knn_k"],
                               e["ood_scale"], vec)
        missing = [f for f in SCALAR_FEATURES if f not in doc["features"]]
        if missing:
            raise ReferenceError(f"reference profile lacks features {missing}")
        return cls(adapter=doc["adapter"], n_rows=doc["n_rows"],
                   features={k: FeatureRef(**v) for k, v in doc["features"].items()},
                   thresholds={int(w): t for w, t in doc["thresholds"].items()},
                   false_alarm={int(w): r for w, r in doc["false_alarm"].items()},
                   alpha=doc["alpha"], words=doc["words"], embedding=emb, rule=doc.get("rule", ""))


def scalar_matrix(texts: Sequence[str], p_phishing: Sequence[float]) -> np.ndarray:
    """[n, len(SCALAR_FEATURES)]: score, uncertainty (bits), then the style features."""
    p = np.asarray(p_phishing, dtype=np.float64).reshape(-1, 1)
    return np.hstack([p, D.binary_entropy(p), style_matrix(texts)])


def build_profile(adapter: str, texts: Sequence[str], p_phishing: Sequence[float],
                  embeddings: np.ndarray | None, *, embed_model: str = "", embed_max_tokens: int = 128,
                  windows: Sequence[int] = WINDOWS, alpha: float = 0.01, n_sims: int = 2000,
                  seed: int = 0) -> ReferenceProfile:
    """The profile of reference rows: `p_phishing` is the adapter's calibrated score of each text (as served)."""
    if len(texts) != len(p_phishing) or (embeddings is not None and len(embeddings) != len(texts)):
        raise ValueError("texts, scores and embeddings must have one row per text")
    values = scalar_matrix(texts, p_phishing)
    feats = {}
    for j, name in enumerate(SCALAR_FEATURES):
        edges = D.decile_edges(values[:, j])
        feats[name] = FeatureRef([float(x) for x in edges], [float(x) for x in D.bin_props(values[:, j], edges)],
                                 [float(x) for x in np.sort(values[:, j])])
    vec = None if embeddings is None else np.asarray(embeddings, dtype=np.float32)
    gamma = D.rbf_gamma(vec) if vec is not None else None
    cal = D.calibrate(values, SCALAR_FEATURES, vec, windows, alpha=alpha, n_sims=n_sims, seed=seed, gamma=gamma)
    df: Counter[str] = Counter()
    for t in texts:
        df.update(words(t))
    emb = None
    if vec is not None and gamma is not None:
        loo = D.knn_distance(vec, vec, KNN_K, exclude_self=True)
        emb = EmbeddingRef(embed_model, vec.shape[1], embed_max_tokens, gamma,
                           D.offdiag_mean(D.rbf(vec, vec, gamma)), KNN_K,
                           float(max(np.quantile(loo, 0.99), 1e-6)), vec)
    return ReferenceProfile(adapter=adapter, n_rows=len(texts), features=feats,
                            thresholds={c.window: c.thresholds for c in cal},
                            false_alarm={c.window: float(c.false_alarm_rate) for c in cal}, alpha=alpha,
                            words=dict(df.most_common(MAX_WORDS)), embedding=emb)
