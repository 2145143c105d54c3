"""Evidence for the diagnosis (see the package docstring): per-model examination of one labelled all-domain
sample (logit lens, probes, SHAP, minimal pairs, error rates) and the cross-model label-noise audit."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..hidden import HiddenStates
from ..logit_lens import decision_layer
from ..minimal_pairs import EDITS, flip_rates
from ..probes import ProbeSet, train_probes

logger = logging.getLogger(__name__)
STYLES = ("email", "sms", "url")
CONFIDENT = 0.9  # |p - y| beyond 1 - CONFIDENT: the model confidently contradicts the label


class Row(Protocol):
    text: str
    style: str
    source: str

    @property
    def y(self) -> int: ...


@dataclass
class DiagnosedModel:
    """One adapter as the diagnosis sees it. ``lens`` maps last-token states ``[n, L, d]`` to calibrated
    P(phishing) per layer ``[n, L]`` (its last column is the served score)."""

    name: str
    seen_sources: list[str]
    threshold: float
    hidden: Callable[[list[str]], HiddenStates]
    lens: Callable[[np.ndarray], np.ndarray]
    score: Callable[[list[str]], np.ndarray]
    tokenizer: Any = None
    bundle_probes: ProbeSet | None = None
    adapted_layers: list[int] = field(default_factory=list)  # layers the LoRA adapter changes
    shap_score: Callable[[list[str]], np.ndarray] | None = None  # for SHAP's one-off texts (default: score)

    @property
    def seen_styles(self) -> list[str]:
        return sorted({s.split("_", 1)[0] for s in self.seen_sources})


@dataclass
class ModelEvidence:
    name: str
    seen_styles: list[str]
    threshold: float
    by_style: dict[str, dict[str, float]]
    lens_curves: dict[str, dict[str, list[float]]]  # style → {"phishing": [L], "legitimate": [L]}
    decision_layers: dict[str, float | None]  # style → median layer where the verdict settles
    probe_accuracy: dict[str, dict[str, Any]]  # label/style/source → {"accuracy": [L], "baseline"}
    bundle_probe_accuracy: dict[str, dict[str, Any]]  # from the bundle (validation rows)
    label_probe_transfer: list[float] | None  # the bundle's label probe, accuracy on this sample per layer
    pairs: list[dict[str, Any]]
    shap: dict[str, dict[str, Any]]
    confident_errors: list[int]  # row indices
    adapted_layers: list[int]
    seconds: float
    served_check_max_diff: float = 0.0  # |lens last layer - scorer| on a few rows


@dataclass
class Diagnosis:
    models: list[ModelEvidence]
    rows: list[dict[str, Any]]  # text (truncated), y, style, source
    layers: list[str]
    noise: dict[str, Any]
    matrix: dict[str, Any] | None
    settings: dict[str, Any]

    def model(self, name: str) -> ModelEvidence:
        return next(m for m in self.models if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The evidence as JSON-able data (diagnosis.json adds the findings: explain.diagnose.report)."""
        return {
            "settings": self.settings,
            "layers": self.layers,
            "noise": self.noise,
            "rows": self.rows,
            "models": [m.__dict__ for m in self.models],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], matrix: dict[str, Any] | None = None) -> Diagnosis:
        """Back from ``diagnosis.json`` (to re-render a report without re-running the models)."""
        return cls(
            [ModelEvidence(**m) for m in data["models"]],
            list(data.get("rows", [])),
            list(data["layers"]),
            dict(data["noise"]),
            matrix,
            dict(data["settings"]),
        )


def _rates(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    pos, neg = y == 1, y == 0
    out = {
        "n": int(len(y)),
        "n_pos": int(pos.sum()),
        "n_neg": int(neg.sum()),
        "accuracy": round(float((pred == pos).mean()), 4) if len(y) else float("nan"),
    }
    out["fnr"] = round(float((~pred[pos]).mean()), 4) if pos.any() else float("nan")
    out["fpr"] = round(float(pred[neg].mean()), 4) if neg.any() else float("nan")
    out["mean_p_phishing_rows"] = round(float(p[pos].mean()), 4) if pos.any() else float("nan")
    out["mean_p_legit_rows"] = round(float(p[neg].mean()), 4) if neg.any() else float("nan")
    return out


def shap_top_tokens(
    score: Callable[[list[str]], np.ndarray],
    texts: Sequence[str],
    tokenizer: Any,
    max_evals: int = 64,
    k: int = 8,
) -> dict[str, Any]:
    """Mean SHAP value per (lower-cased) word over ``texts``; the k most phishing- and legit-pushing."""
    from ..attribution import attribute  # shap: imported when SHAP evidence is asked for

    total: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    errors = []
    for t in texts:
        a = attribute(score, t, tokenizer, granularity="word", max_evals=max_evals)
        errors.append(float(a.additivity_error))
        for tok, v in zip(a.tokens, a.attributions):
            w = tok.strip().lower()
            if w and any(ch.isalnum() or ch in "<>@/" for ch in w):
                total[w] += float(v)
                count[w] += 1
    mean = {w: total[w] / len(texts) for w in total}  # per-text average contribution (absent = 0)
    ranked = sorted(mean.items(), key=lambda kv: kv[1])
    return {
        "n_texts": len(texts),
        "max_evals": max_evals,
        "top_phishing": [(w, round(v, 4)) for w, v in ranked[::-1][:k] if v > 0],
        "top_legitimate": [(w, round(v, 4)) for w, v in ranked[:k] if v < 0],
        "max_additivity_error": round(max(errors), 6) if errors else None,
    }


def _shap_texts(rows: Sequence[Row], style: str, n: int, seed: int, max_chars: int = 320) -> list[str]:
    """Short rows of a style, balanced over labels (SHAP cost grows with length)."""
    rng = random.Random(seed)
    out: list[str] = []
    for want in (1, 0):
        cands = [r.text for r in rows if r.style == style and r.y == want and 20 <= len(r.text) <= max_chars]
        rng.shuffle(cands)
        out += cands[: (n + 1) // 2 if want else n // 2]
    return out


def examine(
    model: DiagnosedModel,
    rows: Sequence[Row],
    *,
    shap_per_style: int = 2,
    shap_evals: int = 64,
    seed: int = 13,
) -> tuple[ModelEvidence, np.ndarray, list[str]]:
    """All per-model evidence on ``rows``; returns (evidence, served scores, layer names)."""
    t0 = time.monotonic()
    texts = [r.text for r in rows]
    y = np.array([r.y for r in rows])
    styles = np.array([r.style for r in rows])
    hidden = model.hidden(texts)
    curve = model.lens(hidden.last)  # [n, L]
    p = curve[:, -1]
    # the lens's last layer must be the served score (same weights, same calibration): check a few rows
    k = min(4, len(texts))
    served_diff = float(np.max(np.abs(np.asarray(model.score(texts[:k])) - p[:k]))) if k else 0.0
    if served_diff > 1e-3:
        logger.warning("%s: logit lens and scorer differ by %.2g", model.name, served_diff)
    by_style, curves, decided = {}, {}, {}
    for s in STYLES:
        m = styles == s
        if not m.any():
            continue
        by_style[s] = _rates(p[m], y[m], model.threshold)
        curves[s] = {
            lab: [round(float(v), 4) for v in curve[m & (y == want)].mean(0)]
            for lab, want in (("phishing", 1), ("legitimate", 0))
            if (m & (y == want)).any()
        }
        layers = [decision_layer(c, model.threshold) for c in curve[m]]
        settled = [v for v in layers if v is not None]
        decided[s] = float(np.median(settled)) if settled else None
    # probes fitted on this all-domain sample: comparable across models (bundle probes of a specialist
    # only ever saw one style)
    targets = {"label": [str(v) for v in y], "style": list(styles), "source": [r.source for r in rows]}
    logger.info("%s: hidden states and lens done (%.0fs)", model.name, time.monotonic() - t0)
    fitted = train_probes(hidden, targets, pooling="last", seed=seed)
    logger.info("%s: probes fitted (%.0fs)", model.name, time.monotonic() - t0)
    transfer = None
    if model.bundle_probes is not None and "label" in model.bundle_probes.probes:
        lp = model.bundle_probes.probes["label"]
        if lp.weight.shape[0] == hidden.n_layers:
            pp = lp.proba(hidden.pooled(lp.pooling))[:, :, lp.classes.index("phishing")]
            transfer = [round(float(((pp[:, li] >= 0.5) == (y == 1)).mean()), 4) for li in range(pp.shape[1])]
    pairs = [r.to_dict() for r in flip_rates(model.score, texts, model.threshold, EDITS, base_scores=p)]
    logger.info("%s: minimal pairs done (%.0fs)", model.name, time.monotonic() - t0)
    shap: dict[str, dict[str, Any]] = {}
    if shap_per_style > 0 and model.tokenizer is not None:
        for s in by_style:
            sample = _shap_texts(rows, s, shap_per_style, seed)
            if sample:
                shap[s] = shap_top_tokens(
                    model.shap_score or model.score, sample, model.tokenizer, max_evals=shap_evals
                )
    confident = [i for i in range(len(rows)) if abs(float(p[i]) - y[i]) >= CONFIDENT]
    ev = ModelEvidence(
        model.name,
        model.seen_styles,
        model.threshold,
        by_style,
        curves,
        decided,
        fitted.accuracy_table(),
        model.bundle_probes.accuracy_table() if model.bundle_probes is not None else {},
        transfer,
        pairs,
        shap,
        confident,
        list(model.adapted_layers),
        round(time.monotonic() - t0, 1),
        served_diff,
    )
    return ev, p, hidden.layers


def noise_audit(
    rows: Sequence[Row],
    evidence: Sequence[ModelEvidence],
    scores: Mapping[str, np.ndarray],
    min_models: int | None = None,
    n_examples: int = 3,
    max_chars: int = 140,
) -> dict[str, Any]:
    """Rows that at least ``min_models`` models (default: all) confidently contradict, counted per source.

    One model's confident error is a model failure; every model, specialists of other styles
    included, confidently agreeing against the label points at the label.
    """
    need = min_models or len(evidence)
    votes: Counter[int] = Counter(i for ev in evidence for i in ev.confident_errors)
    flagged = sorted(i for i, v in votes.items() if v >= need)
    per_source: dict[str, dict[str, Any]] = {}
    for src in sorted({r.source for r in rows}):
        n = sum(r.source == src for r in rows)
        k = sum(rows[i].source == src for i in flagged)
        by_model = {ev.name: sum(rows[i].source == src for i in ev.confident_errors) for ev in evidence}
        per_source[src] = {"n": n, "flagged": k, "by_model": by_model}
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in flagged:
        r = rows[i]
        if len(examples[r.source]) < n_examples:
            examples[r.source].append(
                {
                    "label": "phishing" if r.y else "legitimate",
                    "p": {n: round(float(s[i]), 3) for n, s in scores.items()},
                    "text": " ".join(r.text.split())[:max_chars],
                }
            )
    return {
        "min_models": need,
        "confident": CONFIDENT,
        "n_flagged": len(flagged),
        "per_source": per_source,
        "examples": dict(examples),
    }


def diagnose(
    models: Sequence[DiagnosedModel],
    rows: Sequence[Row],
    matrix: dict[str, Any] | None = None,
    *,
    shap_per_style: int = 2,
    shap_evals: int = 64,
    seed: int = 13,
    settings: dict[str, Any] | None = None,
) -> Diagnosis:
    evidence, scores, layers = [], {}, []
    for m in models:
        logger.info("diagnosing %s on %d rows", m.name, len(rows))
        ev, p, layers = examine(m, rows, shap_per_style=shap_per_style, shap_evals=shap_evals, seed=seed)
        evidence.append(ev)
        scores[m.name] = p
        logger.info("%s done in %.0fs", m.name, ev.seconds)
    noise = noise_audit(rows, evidence, scores)
    kept = [
        {"text": " ".join(r.text.split())[:200], "y": int(r.y), "style": r.style, "source": r.source}
        for r in rows
    ]
    return Diagnosis(
        evidence,
        kept,
        layers,
        noise,
        matrix,
        {
            "rows": len(rows),
            "shap_per_style": shap_per_style,
            "shap_evals": shap_evals,
            "seed": seed,
            **(settings or {}),
        },
    )
