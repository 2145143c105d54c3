"""The drift reference profile of an adapter (DESIGN.md §3, §6).

Stored in the bundle as ``reference.json`` (versioned, ``format: 2``) plus ``reference.safetensors`` for the
embedding sample and its labels. Everything is kept PER CLASS (legitimate, phishing), so the live monitor
can mix the reference at the live window's estimated phishing prevalence (explain.prior) and a change in
how much phishing arrives never looks like drift. Per scalar feature: decile edges, per-class bin shares
(PSI) and sorted per-class samples (KS, reference quantiles); thresholds calibrated per window size at
several prevalences; the embedding sample with labels, RBF bandwidth, per-class kernel means and OOD
scale; per-class word document frequencies; the prior the adapter's probabilities are calibrated under.

Rows: the model-dependent features (score, uncertainty) come from held-out rows the adapter never trained
on (its validation rows: a model is over-confident on its own training rows); the model-independent ones
(style features, embedding, words) from those rows plus a capped sample of its training rows, which
describe the training distribution's style as well as any rows do and give several hundred per class.
No raw text is stored. When the rows' sources are given, the thresholds are calibrated to hold for the
training sources in other blends too (explain.drift_calibration); `sources` records each class's rows per
source and `source_shift` the perturbation (0: plain calibration, as in profiles built before it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import drift as D
from .drift_calibration import PRIOR_GRID, SOURCE_SHIFT, RowSet, calibrate
from .drift_stats import DEFAULT as DEFAULT_STATISTICS
from .drift_stats import PSI, DriftStatistic, statistic_class
from .style import STYLE_FEATURES, style_matrix, words

FORMAT = 2  # 2: class-conditional statistics (reweighted to the live prior), prior block, labels
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
    edges: list[float]  # interior decile cut points of the pooled reference (distinct)
    props_by_class: list[list[float]]  # [legitimate, phishing] smoothed share per bin (len(edges) + 1 each)
    sample_by_class: list[list[float]]  # [legitimate, phishing] sorted reference values

    @property
    def props(self) -> np.ndarray:
        return np.asarray(self.props_by_class, dtype=np.float64)  # [2, bins]

    @property
    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.asarray(self.sample_by_class[0], dtype=np.float64),
            np.asarray(self.sample_by_class[1], dtype=np.float64),
        )

    @classmethod
    def of(cls, values: np.ndarray, y: np.ndarray) -> FeatureRef:
        psi = PSI.fit(
            values, y
        )  # the stored bins are PSI's (format 2); other statistics refit on the samples
        return cls(
            [float(x) for x in psi.edges],
            [[float(x) for x in p] for p in psi.props_by_class],
            [[float(x) for x in np.sort(values[y == c])] for c in (0, 1)],
        )


@dataclass(frozen=True)
class PriorRef:
    calibration: float  # phishing share of the rows the adapter's calibration was fitted on
    reference: float  # phishing share of the reference's scored rows


@dataclass(frozen=True)
class EmbeddingRef:
    model: str
    dim: int
    max_tokens: int
    gamma: float  # RBF bandwidth (median heuristic)
    kernel: D.KernelMeans  # per-class off-diagonal means of K(ref, ref), for the reweighted MMD
    knn_k: int
    ood_scale: float  # leave-one-out 99th percentile of the reference's own kNN distance
    vectors: np.ndarray = field(repr=False, compare=False)  # [n, dim] float32 unit vectors
    labels: np.ndarray = field(repr=False, compare=False)  # [n] 1 = phishing


@dataclass(frozen=True)
class ReferenceProfile:
    adapter: str
    n_rows: int  # scored (held-out) rows
    n_style_rows: int  # rows behind the style features and the embedding sample
    features: dict[str, FeatureRef]
    thresholds: dict[int, dict[str, float]]  # window size -> feature -> threshold
    false_alarm: dict[int, float]  # window size -> simulated false-alarm rate of the rule (worst prior)
    alpha: float
    prior: PriorRef
    calibrated_priors: list[float]  # live prevalences the thresholds were calibrated at
    words: dict[
        str, list[int]
    ]  # word -> [legitimate, phishing] reference texts containing it (top MAX_WORDS)
    word_rows: list[int]  # [legitimate, phishing] texts the word counts are over
    embedding: EmbeddingRef | None = None
    statistics: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATISTICS))  # kind -> name
    # label -> source -> reference rows (style rows), and the eps of the source-blend calibration; empty and
    # 0.0 in profiles built without sources (plain calibration)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    source_shift: float = 0.0
    format: int = FORMAT
    rule: str = (
        "embedding over threshold, or >= 2 scalar features over threshold; window full; every "
        "statistic against the reference reweighted to the window's estimated prevalence"
    )

    def thresholds_for(self, window: int) -> tuple[int, dict[str, float]]:
        """Thresholds for a live window: those calibrated for `window`, else for the largest calibrated size
        below it (conservative: smaller windows have higher thresholds), else the smallest one."""
        sizes = sorted(self.thresholds)
        below = [w for w in sizes if w <= window]
        w = below[-1] if below else sizes[0]
        return w, self.thresholds[w]

    def statistic(self, feature: str) -> DriftStatistic:
        """The fitted statistic of `feature` (a scalar feature or "embedding"), the one its thresholds were
        calibrated with (explain.drift_stats)."""
        if feature == "embedding":
            if self.embedding is None:
                raise ReferenceError("the reference profile has no embedding sample")
            e = self.embedding
            cls = statistic_class(self.statistics["embedding"], "embedding")
            return cls.from_reference((e.vectors[e.labels == 0], e.vectors[e.labels == 1]), e)
        fr = self.features[feature]
        return statistic_class(self.statistics["scalar"], "scalar").from_reference(fr.sorted, fr)

    def word_counts(self, prior: float) -> tuple[dict[str, float], float]:
        """Reference document frequencies mixed at `prior`, as counts over `sum(word_rows)` texts."""
        n0, n1 = (max(n, 1) for n in self.word_rows)
        n = float(sum(self.word_rows))
        return {w: n * (prior * c[1] / n1 + (1 - prior) * c[0] / n0) for w, c in self.words.items()}, n

    # ---- files -------------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, str]:
        """Write reference.json (+ reference.safetensors); returns {role: file name} for manifest extras."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        doc: dict[str, Any] = {
            "format": self.format,
            "adapter": self.adapter,
            "n_rows": self.n_rows,
            "n_style_rows": self.n_style_rows,
            "alpha": self.alpha,
            "rule": self.rule,
            "prior": asdict(self.prior),
            "calibrated_priors": self.calibrated_priors,
            "features": {k: asdict(v) for k, v in self.features.items()},
            "thresholds": {str(w): t for w, t in self.thresholds.items()},
            "false_alarm": {str(w): r for w, r in self.false_alarm.items()},
            "words": self.words,
            "word_rows": self.word_rows,
            "embedding": None,
            "statistics": self.statistics,
            "sources": self.sources,
            "source_shift": self.source_shift,
        }
        out = {"reference": JSON_FILE}
        if self.embedding is not None:
            e = self.embedding
            doc["embedding"] = {
                "model": e.model,
                "dim": e.dim,
                "max_tokens": e.max_tokens,
                "gamma": e.gamma,
                "kernel": asdict(e.kernel),
                "knn_k": e.knn_k,
                "ood_scale": e.ood_scale,
                "file": EMBED_FILE,
            }
            # float16 halves the bundle size; cosine distances move by < 1e-3
            save_file(
                {"embeddings": e.vectors.astype(np.float16), "labels": e.labels.astype(np.uint8)},
                str(directory / EMBED_FILE),
            )
            out["reference_embeddings"] = EMBED_FILE
        tmp = directory / (JSON_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")))
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
            raise ReferenceError(
                f"reference profile format {doc.get('format')!r} is not supported (this server "
                f"reads format {FORMAT}; rebuild it: phishlens augment BUNDLE --only reference)"
            )
        emb = None
        if doc.get("embedding"):
            from safetensors.numpy import load_file

            e = doc["embedding"]
            fname = Path(e["file"]).name  # a bare file name in the bundle folder, never a path
            try:
                arrays = load_file(str(path.parent / fname))
                vec, lab = arrays["embeddings"].astype(np.float32), arrays["labels"].astype(np.int64)
            except (OSError, KeyError) as err:
                raise ReferenceError(f"reference embeddings {fname}: {err}") from err
            if vec.ndim != 2 or vec.shape[1] != e["dim"] or lab.shape != (len(vec),):
                raise ReferenceError(
                    f"reference embeddings have shape {vec.shape} (labels {lab.shape}), "
                    f"expected [n, {e['dim']}] and [n]"
                )
            emb = EmbeddingRef(
                e["model"],
                e["dim"],
                e["max_tokens"],
                e["gamma"],
                D.KernelMeans(**e["kernel"]),
                e["knn_k"],
                e["ood_scale"],
                vec,
                lab,
            )
        missing = [f for f in SCALAR_FEATURES if f not in doc["features"]]
        if missing:
            raise ReferenceError(f"reference profile lacks features {missing}")
        statistics = {**DEFAULT_STATISTICS, **doc.get("statistics", {})}  # profiles before the key: PSI, MMD²
        try:
            for kind, name in statistics.items():
                statistic_class(name, kind)
        except ValueError as err:
            raise ReferenceError(str(err)) from err
        return cls(
            adapter=doc["adapter"],
            n_rows=doc["n_rows"],
            n_style_rows=doc["n_style_rows"],
            features={k: FeatureRef(**v) for k, v in doc["features"].items()},
            thresholds={int(w): t for w, t in doc["thresholds"].items()},
            false_alarm={int(w): r for w, r in doc["false_alarm"].items()},
            alpha=doc["alpha"],
            prior=PriorRef(**doc["prior"]),
            calibrated_priors=list(doc["calibrated_priors"]),
            words=doc["words"],
            word_rows=list(doc["word_rows"]),
            embedding=emb,
            statistics=statistics,
            rule=doc.get("rule", ""),
            sources=doc.get("sources", {}),  # absent before sources were recorded: plain calibration
            source_shift=float(doc.get("source_shift", 0.0)),
        )


def scalar_matrix(texts: Sequence[str], p_phishing: Sequence[float]) -> np.ndarray:
    """[n, len(SCALAR_FEATURES)]: score, uncertainty (bits), then the style features."""
    p = np.asarray(p_phishing, dtype=np.float64).reshape(-1, 1)
    return np.hstack([p, D.binary_entropy(p), style_matrix(texts)])


def _labels(labels: Sequence[int | bool | str]) -> np.ndarray:
    return np.asarray(
        [int(v == "phishing") if isinstance(v, str) else int(v) for v in labels], dtype=np.int64
    )


def build_profile(
    adapter: str,
    texts: Sequence[str],
    p_phishing: Sequence[float],
    labels: Sequence[int | bool | str],
    embeddings: np.ndarray | None,
    *,
    calibration_prior: float | None = None,
    extra_texts: Sequence[str] = (),
    extra_labels: Sequence[int | bool | str] = (),
    extra_embeddings: np.ndarray | None = None,
    embed_model: str = "",
    embed_max_tokens: int = 128,
    windows: Sequence[int] = WINDOWS,
    alpha: float = 0.005,
    n_sims: int = 2000,
    seed: int = 0,
    statistics: dict[str, str] | None = None,
    sources: Sequence[str] | None = None,
    extra_sources: Sequence[str] | None = None,
    source_shift: float = SOURCE_SHIFT,
) -> ReferenceProfile:
    """The profile of labelled reference rows.

    `texts` are held-out rows with `p_phishing`, the adapter's calibrated score of each (as served), and
    `labels` (1 / "phishing" = phishing); `extra_*` are more rows (e.g. training rows) used only for the
    model-independent features (style, embedding, words). `calibration_prior`: phishing share of the rows
    the adapter's calibration was fitted on (default: that of `texts`). `statistics`: kind ("scalar",
    "embedding") -> registered statistic name (explain.drift_stats; default PSI and MMD²). `sources` /
    `extra_sources`: the corpus of each row; with them (both, when there are extra rows) the thresholds
    are calibrated against other blends of these sources (`source_shift`, explain.drift_calibration),
    without them as before.
    """
    stats = {**DEFAULT_STATISTICS, **(statistics or {})}
    y = _labels(labels)
    ye = _labels(extra_labels)
    if (
        len(texts) != len(p_phishing)
        or len(y) != len(texts)
        or len(ye) != len(extra_texts)
        or (embeddings is not None and len(embeddings) != len(texts))
        or (extra_embeddings is not None and len(extra_embeddings) != len(extra_texts))
    ):
        raise ValueError("texts, scores, labels and embeddings must have one row per text")
    if (embeddings is None and extra_embeddings is not None) or (
        embeddings is not None and len(extra_texts) and extra_embeddings is None
    ):
        raise ValueError("give embeddings for both the scored and the extra rows, or for neither")
    if sources is not None and (
        len(sources) != len(texts) or len(extra_sources if extra_sources is not None else []) != len(ye)
    ):
        raise ValueError("give one source per row, for the scored and the extra rows alike")
    src = None if sources is None else np.asarray(list(sources) + list(extra_sources or []), dtype=object)
    scores = scalar_matrix(texts, p_phishing)[:, :2]
    all_texts = list(texts) + list(extra_texts)
    ys = np.concatenate([y, ye])
    style = style_matrix(all_texts)
    feats: dict[str, FeatureRef] = {}
    for j, name in enumerate(SCALAR_FEATURES[:2]):
        feats[name] = FeatureRef.of(scores[:, j], y)
    for j, name in enumerate(SCALAR_FEATURES[2:]):
        feats[name] = FeatureRef.of(style[:, j], ys)
    vec = None
    if embeddings is not None:
        parts = [np.asarray(embeddings, dtype=np.float32)]
        if len(extra_texts):
            parts.append(np.asarray(extra_embeddings, dtype=np.float32))
        vec = np.concatenate(parts)
    gamma = D.rbf_gamma(vec) if vec is not None else None
    cal_prior = float(y.mean()) if calibration_prior is None else float(calibration_prior)
    cal = calibrate(
        RowSet(scores, y, SCALAR_FEATURES[:2], sources=None if src is None else src[: len(y)]),
        RowSet(style, ys, SCALAR_FEATURES[2:], vec, sources=src),
        cal_prior,
        windows,
        alpha=alpha,
        n_sims=n_sims,
        seed=seed,
        gamma=gamma,
        scalar=statistic_class(stats["scalar"], "scalar"),
        embedding=statistic_class(stats["embedding"], "embedding"),
        source_shift=source_shift,
    )
    df: dict[str, list[int]] = {}
    for t, c in zip(all_texts, ys):
        for w in words(t):
            df.setdefault(w, [0, 0])[int(c)] += 1
    top = sorted(df.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:MAX_WORDS]
    emb = None
    if vec is not None and gamma is not None:
        loo = D.knn_distance(vec, vec, KNN_K, exclude_self=True)
        emb = EmbeddingRef(
            embed_model,
            vec.shape[1],
            embed_max_tokens,
            gamma,
            D.KernelMeans.of(vec, ys, gamma),
            KNN_K,
            float(max(np.quantile(loo, 0.99), 1e-6)),
            vec,
            ys,
        )
    return ReferenceProfile(
        adapter=adapter,
        n_rows=len(texts),
        n_style_rows=len(all_texts),
        features=feats,
        thresholds={c.window: c.thresholds for c in cal},
        false_alarm={c.window: float(c.false_alarm_rate) for c in cal},
        alpha=alpha,
        prior=PriorRef(cal_prior, float(y.mean())),
        calibrated_priors=list(PRIOR_GRID),
        words=dict(top),
        word_rows=[int((ys == 0).sum()), int((ys == 1).sum())],
        embedding=emb,
        statistics=stats,
        sources={
            lab: {str(k): int(n) for k, n in zip(*np.unique(src[ys == c], return_counts=True))}
            for c, lab in enumerate(("legitimate", "phishing"))
        }
        if src is not None
        else {},
        source_shift=cal[0].source_shift if cal else 0.0,
    )


def calibration_prior(path: Path) -> float | None:
    """The phishing share an adapter's probabilities are calibrated under, from its reference.json (None if
    the profile is missing or of another format): what CBPE needs to follow a change of prevalence."""
    try:
        doc = json.loads(Path(path).read_text())
        return float(doc["prior"]["calibration"]) if doc.get("format") == FORMAT else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
