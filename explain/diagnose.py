"""Why does a fine-tuned classifier fail to generalise? Evidence from its hidden states and its verdicts.

`diagnose(models, rows)` runs every model (anything that can score texts and return per-layer
hidden states, see :class:`DiagnosedModel`) over one labelled sample that spans all domains, and
collects five kinds of evidence:

1. **where the decision forms** — the logit lens per layer and per style (`logit_lens`), and
   linear probes fitted on this sample for label, style and source (`probe_accuracy`): if style
   or source is more decodable than the label, the model *can* key on them (shortcut risk);
2. **what it reads** — SHAP top tokens per style (`shap`, via `phishlens.explain.attribution`);
3. **which cue flips it** — minimal pairs (`minimal_pairs`): remove the URL, change the sender,
   strip HTML, swap brands;
4. **how noisy the labels are** — rows the models confidently contradict, per source (`noise`);
5. **how it fails per style** — false-positive and false-negative rates on the sample.

`verdict()` turns them into named failure modes with their evidence; `write_report()` writes
``report.md``, ``diagnosis.json`` and PNG figures. No server, training or vLLM imports here: the
`phishlens diagnose` command (training/diagnose_run.py) builds the models and the sample.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from .hidden import HiddenStates
from .logit_lens import decision_layer
from .minimal_pairs import EDITS, flip_rates
from .probes import ProbeSet, peak_layer, train_probes

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
        return {"settings": self.settings, "layers": self.layers, "noise": self.noise, "rows": self.rows,
                "models": [m.__dict__ for m in self.models], "findings": verdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], matrix: dict[str, Any] | None = None) -> "Diagnosis":
        """Back from ``diagnosis.json`` (to re-render a report without re-running the models)."""
        return cls([ModelEvidence(**m) for m in data["models"]], list(data.get("rows", [])), list(data["layers"]),
                   dict(data["noise"]), matrix, dict(data["settings"]))


# ------------------------------------------------------------------------------------------------
# evidence


def _rates(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    pos, neg = y == 1, y == 0
    out = {"n": int(len(y)), "n_pos": int(pos.sum()), "n_neg": int(neg.sum()),
           "accuracy": round(float((pred == pos).mean()), 4) if len(y) else float("nan")}
    out["fnr"] = round(float((~pred[pos]).mean()), 4) if pos.any() else float("nan")
    out["fpr"] = round(float(pred[neg].mean()), 4) if neg.any() else float("nan")
    out["mean_p_phishing_rows"] = round(float(p[pos].mean()), 4) if pos.any() else float("nan")
    out["mean_p_legit_rows"] = round(float(p[neg].mean()), 4) if neg.any() else float("nan")
    return out


def shap_top_tokens(score: Callable[[list[str]], np.ndarray], texts: Sequence[str], tokenizer: Any,
                    max_evals: int = 64, k: int = 8) -> dict[str, Any]:
    """Mean SHAP value per (lower-cased) word over ``texts``; the k most phishing- and legit-pushing."""
    from .attribution import attribute

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
    return {"n_texts": len(texts), "max_evals": max_evals,
            "top_phishing": [(w, round(v, 4)) for w, v in ranked[::-1][:k] if v > 0],
            "top_legitimate": [(w, round(v, 4)) for w, v in ranked[:k] if v < 0],
            "max_additivity_error": round(max(errors), 6) if errors else None}


def _shap_texts(rows: Sequence[Row], style: str, n: int, seed: int, max_chars: int = 320) -> list[str]:
    """Short rows of a style, balanced over labels (SHAP cost grows with length)."""
    rng = random.Random(seed)
    out: list[str] = []
    for want in (1, 0):
        cands = [r.text for r in rows if r.style == style and r.y == want and 20 <= len(r.text) <= max_chars]
        rng.shuffle(cands)
        out += cands[: (n + 1) // 2 if want else n // 2]
    return out


def examine(model: DiagnosedModel, rows: Sequence[Row], *, shap_per_style: int = 2, shap_evals: int = 64,
            seed: int = 13) -> tuple[ModelEvidence, np.ndarray, list[str]]:
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
        curves[s] = {lab: [round(float(v), 4) for v in curve[m & (y == want)].mean(0)]
                     for lab, want in (("phishing", 1), ("legitimate", 0)) if (m & (y == want)).any()}
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
                shap[s] = shap_top_tokens(model.shap_score or model.score, sample, model.tokenizer,
                                          max_evals=shap_evals)
    confident = [i for i in range(len(rows)) if abs(float(p[i]) - y[i]) >= CONFIDENT]
    ev = ModelEvidence(model.name, model.seen_styles, model.threshold, by_style, curves, decided,
                       fitted.accuracy_table(),
                       model.bundle_probes.accuracy_table() if model.bundle_probes is not None else {},
                       transfer, pairs, shap, confident, list(model.adapted_layers),
                       round(time.monotonic() - t0, 1), served_diff)
    return ev, p, hidden.layers


def noise_audit(rows: Sequence[Row], evidence: Sequence[ModelEvidence], scores: Mapping[str, np.ndarray],
                min_models: int | None = None, n_examples: int = 3, max_chars: int = 140) -> dict[str, Any]:
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
            examples[r.source].append({"label": "phishing" if r.y else "legitimate",
                                       "p": {n: round(float(s[i]), 3) for n, s in scores.items()},
                                       "text": " ".join(r.text.split())[:max_chars]})
    return {"min_models": need, "confident": CONFIDENT, "n_flagged": len(flagged), "per_source": per_source,
            "examples": dict(examples)}


def diagnose(models: Sequence[DiagnosedModel], rows: Sequence[Row], matrix: dict[str, Any] | None = None, *,
             shap_per_style: int = 2, shap_evals: int = 64, seed: int = 13,
             settings: dict[str, Any] | None = None) -> Diagnosis:
    evidence, scores, layers = [], {}, []
    for m in models:
        logger.info("diagnosing %s on %d rows", m.name, len(rows))
        ev, p, layers = examine(m, rows, shap_per_style=shap_per_style, shap_evals=shap_evals, seed=seed)
        evidence.append(ev)
        scores[m.name] = p
        logger.info("%s done in %.0fs", m.name, ev.seconds)
    noise = noise_audit(rows, evidence, scores)
    kept = [{"text": " ".join(r.text.split())[:200], "y": int(r.y), "style": r.style, "source": r.source}
            for r in rows]
    return Diagnosis(evidence, kept, layers, noise, matrix,
                     {"rows": len(rows), "shap_per_style": shap_per_style, "shap_evals": shap_evals, "seed": seed,
                      **(settings or {})})


# ------------------------------------------------------------------------------------------------
# verdict


def _matrix_value(matrix: dict[str, Any] | None, model: str, column: str) -> float | None:
    if not matrix:
        return None
    for row in matrix.get("rows", []):
        if row.get("name") == model:
            cell = row.get("cells", {}).get(column)
            return None if cell is None or cell.get("value") is None else float(cell["value"])
    return None


def _peak(acc: Mapping[str, Any], name: str) -> tuple[float, int] | None:
    e = acc.get(name)
    if not e:
        return None
    a = e["accuracy"]
    i = peak_layer(a)
    return float(a[i]), i


def verdict(d: Diagnosis) -> list[dict[str, Any]]:
    """Named failure modes, each with the models concerned and the evidence (numbers) behind it."""
    findings: list[dict[str, Any]] = []
    generalists = [m for m in d.models if set(m.seen_styles) >= set(STYLES)]
    ref = generalists[0] if generalists else None
    # 1. out-of-style failures of specialists, and how they fail
    for m in d.models:
        for s in STYLES:
            if s in m.seen_styles or s not in m.by_style:
                continue
            st = m.by_style[s]
            f1 = _matrix_value(d.matrix, m.name, s)
            ref_f1 = _matrix_value(d.matrix, ref.name, s) if ref else None
            fpr, fnr = st.get("fpr", float("nan")), st.get("fnr", float("nan"))
            worse = f1 is not None and ref_f1 is not None and f1 < ref_f1 - 0.05
            if not worse and not (fpr >= 0.3 or fnr >= 0.3):
                continue
            f0, n0 = (0.0 if math.isnan(fpr) else fpr), (0.0 if math.isnan(fnr) else fnr)
            mode = ("errs both ways outside its style" if min(f0, n0) >= 0.25 else
                    "over-calls phishing outside its style" if f0 >= n0 else "misses phishing outside its style")
            ev = [f"sample {s}: FPR {fpr:.2f}, FNR {fnr:.2f} (n={st['n']})"]
            if f1 is not None:
                ev.append(f"matrix F1 on {s}: {f1:.2f}" + (f" vs {ref.name} {ref_f1:.2f}" if ref and ref_f1 is not None else ""))
            ev.append(f"mean served P(phishing) on {s} legit rows {st['mean_p_legit_rows']:.2f}, "
                      f"on {s} phishing rows {st['mean_p_phishing_rows']:.2f}")
            frozen = min(m.adapted_layers) - 1 if m.adapted_layers else None
            legit = m.lens_curves.get(s, {}).get("legitimate")
            if frozen is not None and frozen >= 0 and legit:
                own = [m.lens_curves[o]["legitimate"] for o in m.seen_styles if "legitimate" in m.lens_curves.get(o, {})]
                ev.append(f"logit lens on {s} legit rows: {legit[frozen]:.2f} after the frozen base (layer {frozen}), "
                          f"{legit[-1]:.2f} after the adapter" + (f" (own style: {own[0][frozen]:.2f} → {own[0][-1]:.2f})" if own else ""))
            top = m.shap.get(s, {}).get("top_phishing", [])[:4]
            if top:
                ev.append("SHAP words pushing to phishing on " + s + ": " + ", ".join(w for w, _ in top))
            findings.append({"mode": f"out-of-style failure: {mode}", "models": [m.name], "style": s, "evidence": ev})
    # 2. shortcut risk: style / source more decodable than the label
    for m in d.models:
        lab, sty, src = (_peak(m.probe_accuracy, k) for k in ("label", "style", "source"))
        if not lab:
            continue
        ev = [f"peak held-out probe accuracy: label {lab[0]:.2f} (layer {lab[1]})"
              + (f", style {sty[0]:.2f} (layer {sty[1]})" if sty else "")
              + (f", source {src[0]:.2f} (layer {src[1]}, chance {m.probe_accuracy['source']['baseline']:.2f})" if src else "")]
        risky = [n for n, v in (("style", sty), ("source", src)) if v and v[0] >= lab[0]]
        if risky:
            findings.append({"mode": "shortcut risk: " + " and ".join(risky) + " more decodable than the label",
                             "models": [m.name], "evidence": ev})
        # the bundle's own probes, on its (in-domain) validation rows
        blab, bsrc = _peak(m.bundle_probe_accuracy, "label"), _peak(m.bundle_probe_accuracy, "source")
        if blab and bsrc and bsrc[0] >= blab[0]:
            findings.append({"mode": "shortcut risk on the training distribution: source more decodable than the label",
                             "models": [m.name],
                             "evidence": [f"bundle probes (validation rows): source {bsrc[0]:.2f} at layer {bsrc[1]} "
                                          f"(majority {m.bundle_probe_accuracy['source']['baseline']:.2f}) vs label "
                                          f"{blab[0]:.2f} at layer {blab[1]}"]})
    # 3. cue shortcuts from minimal pairs
    for m in d.models:
        for pr in m.pairs:
            if pr["n_changed"] >= 5 and pr["flip_rate"] is not None and pr["flip_rate"] >= 0.15:
                findings.append({"mode": f"cue shortcut: {pr['edit']} flips the verdict", "models": [m.name],
                                 "evidence": [f"{pr['n_flipped']}/{pr['n_changed']} verdicts flip "
                                              f"({pr['to_legitimate']} to legitimate, {pr['to_phishing']} to phishing); "
                                              f"mean ΔP {pr['mean_delta']:+.2f}"]})
    # 4. label noise
    noisy = {s: v for s, v in d.noise["per_source"].items() if v["flagged"] >= 2}
    if noisy:
        findings.append({"mode": "label noise: rows every model confidently contradicts",
                         "models": [m.name for m in d.models],
                         "evidence": [f"{s}: {v['flagged']}/{v['n']} rows" for s, v in noisy.items()]})
    # 5. where the decision forms vs where the adapter acts
    for m in d.models:
        lab = m.probe_accuracy.get("label")
        if not lab or not m.adapted_layers or min(m.adapted_layers) == 0:
            continue
        frozen = min(m.adapted_layers) - 1
        below = max(lab["accuracy"][: frozen + 1])
        prior = {s: c["legitimate"][frozen] for s, c in m.lens_curves.items() if "legitimate" in c}
        final = {s: c["legitimate"][-1] for s, c in m.lens_curves.items() if "legitimate" in c}
        dl = [v for v in m.decision_layers.values() if v is not None]
        if not dl or min(dl) < frozen - 1:
            continue
        ev = ["logit lens settles at median layer " + ", ".join(f"{s} {v:.0f}" for s, v in m.decision_layers.items()
                                                             if v is not None)
              + f"; the adapter acts on layers {min(m.adapted_layers)}-{max(m.adapted_layers)}",
              f"legit rows read P(phishing) after the frozen base (layer {frozen}) → after the adapter: "
              + ", ".join(f"{s} {prior[s]:.2f} → {final[s]:.2f}" for s in prior),
              f"label probe: best {below:.2f} on the frozen layers 0-{frozen} (majority {lab['baseline']:.2f}), "
              f"{lab['accuracy'][-1]:.2f} at the last layer"]
        findings.append({"mode": "the verdict is formed in the adapter's layers", "models": [m.name], "evidence": ev})
    return findings


# ------------------------------------------------------------------------------------------------
# report


def _fig(n: int, w: float = 4.2, h: float = 3.0) -> tuple[Any, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n, 2)
    rows = int(math.ceil(n / cols))
    fig = Figure(figsize=(w * cols, h * rows), dpi=110)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def plot_probes(d: Diagnosis, path: Path) -> Path:
    fig, axes = _fig(len(d.models))
    colors = {"label": "tab:red", "style": "tab:blue", "source": "tab:green"}
    for ax, m in zip(axes, d.models):
        for name, c in colors.items():
            e = m.probe_accuracy.get(name)
            if e:
                ax.plot(e["accuracy"], color=c, label=name)
                ax.axhline(e["baseline"], color=c, linestyle=":", linewidth=0.8)
        if m.label_probe_transfer:
            ax.plot(m.label_probe_transfer, color="tab:red", linestyle="--", linewidth=0.9,
                    label="label (bundle probe)")
        _layer_axes(ax, m, m.name, (0, 1.02), "held-out accuracy", "lower right")
    fig.suptitle("Linear probe accuracy by layer (dotted: majority baseline; grey: LoRA layers)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _layer_axes(ax: Any, m: Any, title: str, ylim: tuple[float, float], ylabel: str, legend_loc: str) -> None:
    """The per-layer panel frame both layer plots share: LoRA layers shaded grey, labels, legend."""
    if m.adapted_layers:
        ax.axvspan(min(m.adapted_layers) - 0.5, max(m.adapted_layers) + 0.5, color="#eeeeee", zorder=0)
    ax.set_title(title, fontsize=9)
    ax.set_ylim(*ylim)
    ax.set_xlabel("layer", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=6, loc=legend_loc)


def plot_lens(d: Diagnosis, path: Path) -> Path:
    fig, axes = _fig(len(d.models))
    colors = {"email": "tab:blue", "sms": "tab:orange", "url": "tab:green"}
    for ax, m in zip(axes, d.models):
        for s, cur in m.lens_curves.items():
            for lab, ls in (("phishing", "-"), ("legitimate", "--")):
                if lab in cur:
                    ax.plot(cur[lab], color=colors.get(s, "black"), linestyle=ls, label=f"{s} {lab}")
        ax.axhline(m.threshold, color="black", linewidth=0.6, linestyle=":")
        _layer_axes(ax, m, f"{m.name} (seen: {', '.join(m.seen_styles)})", (-0.02, 1.02), "mean P(phishing)",
                    "upper left")
    fig.suptitle("Logit lens per style (solid: phishing rows, dashed: legit rows; dotted: threshold)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_flips(d: Diagnosis, path: Path) -> Path:
    fig, (ax,) = _fig(1, 7.5, 3.2)
    edits = [e.name for e in EDITS]
    width = 0.8 / max(1, len(d.models))
    for k, m in enumerate(d.models):
        rates = {p["edit"]: (p["flip_rate"] or 0.0) for p in m.pairs}
        ax.bar(np.arange(len(edits)) + k * width, [rates.get(e, 0.0) for e in edits], width, label=m.name)
    ax.set_xticks(np.arange(len(edits)) + width * (len(d.models) - 1) / 2)
    ax.set_xticklabels(edits, fontsize=8)
    ax.set_ylabel("verdict flip rate", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title("Minimal pairs: share of changed texts whose verdict flips", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


_BUNDLE_PROBES = ("label", "style", "source", "concept.has_url", "concept.urgency", "concept.html",
                  "concept.sender_cue", "concept.brand")


def to_markdown(d: Diagnosis, figures: Mapping[str, str], intro: str = "") -> str:
    L: list[str] = ["# Generalisation diagnosis", ""]
    if intro:
        L += [intro, ""]
    s = d.settings
    L += [f"Sample: {s['rows']} test rows ({s.get('per_label', '?')} per label per source, seed {s['seed']}); "
          f"SHAP: {s['shap_per_style']} short texts per style per model, {s['shap_evals']} evaluations each. "
          f"Run time {s.get('seconds', '?')} s on {s.get('host', 'this host')}. Reproduce: `{s.get('command', 'phishlens diagnose')}`.",
          ""]
    if "matrix" in figures:
        L += ["## Cross-domain matrix", "", f"![cross-domain F1]({figures['matrix']})", "",
              "F1 on the test split per domain (from `docs/eval/matrix.json`); hatched = unseen in training.", ""]
    L += ["## Verdict", ""]
    for f in verdict(d):
        L.append(f"- **{f['mode']}** — {', '.join(f['models'])}")
        for e in f["evidence"]:
            L.append(f"  - {e}")
    L += ["", "## Errors by style on this sample", "",
          "| model | style | n | accuracy | FPR | FNR | mean P legit rows | mean P phishing rows | lens settles (median layer) |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in d.models:
        for st, r in m.by_style.items():
            seen = "" if st in m.seen_styles else "*"
            L.append(f"| {m.name} | {st}{seen} | {r['n']} | {_fmt(r['accuracy'])} | {_fmt(r['fpr'])} | {_fmt(r['fnr'])} | "
                     f"{_fmt(r['mean_p_legit_rows'])} | {_fmt(r['mean_p_phishing_rows'])} | {_fmt(m.decision_layers.get(st))} |")
    L += ["", "`*` = style unseen in training.", "", "## Where the decision forms", ""]
    if "lens" in figures:
        L += [f"![logit lens]({figures['lens']})", ""]
    if "probes" in figures:
        L += [f"![probe accuracy]({figures['probes']})", ""]
    L += ["| model | label peak (layer) | style peak (layer) | source peak (layer) / chance | label probe at last layer | bundle label probe on this sample (last layer) |",
          "|---|---|---|---|---:|---:|"]
    for m in d.models:
        cells = []
        for k in ("label", "style", "source"):
            pk = _peak(m.probe_accuracy, k)
            cells.append("—" if not pk else f"{pk[0]:.2f} ({pk[1]})" + (f" / {m.probe_accuracy[k]['baseline']:.2f}" if k == "source" else ""))
        last = m.probe_accuracy.get("label", {}).get("accuracy", [float("nan")])[-1]
        tr = m.label_probe_transfer[-1] if m.label_probe_transfer else None
        L.append(f"| {m.name} | " + " | ".join(cells) + f" | {_fmt(last)} | {_fmt(tr)} |")
    if any(m.bundle_probe_accuracy for m in d.models):
        L += ["", "Probes stored in each bundle (trained on its validation rows: the training distribution), peak "
                  "held-out accuracy (layer) / majority baseline:", "",
              "| model | " + " | ".join(_BUNDLE_PROBES) + " |", "|---|" + "---|" * len(_BUNDLE_PROBES)]
        for m in d.models:
            cells = []
            for k in _BUNDLE_PROBES:
                pk = _peak(m.bundle_probe_accuracy, k)
                cells.append("—" if not pk else f"{pk[0]:.2f} ({pk[1]}) / {m.bundle_probe_accuracy[k]['baseline']:.2f}")
            L.append(f"| {m.name} | " + " | ".join(cells) + " |")
    L += ["", "## What the models read (SHAP, mean value per word over the explained texts)", ""]
    for m in d.models:
        for st, e in m.shap.items():
            ph = ", ".join(f"{w} ({v:+.2f})" for w, v in e["top_phishing"][:6]) or "—"
            lg = ", ".join(f"{w} ({v:+.2f})" for w, v in e["top_legitimate"][:6]) or "—"
            L.append(f"- {m.name} / {st} ({e['n_texts']} texts): towards phishing: {ph}; towards legitimate: {lg}")
    L += ["", "## Minimal pairs", ""]
    if "flips" in figures:
        L += [f"![flip rates]({figures['flips']})", ""]
    L += ["| model | edit | texts changed | flipped | → legitimate | → phishing | mean ΔP |", "|---|---|---:|---:|---:|---:|---:|"]
    for m in d.models:
        for p in m.pairs:
            L.append(f"| {m.name} | {p['edit']} | {p['n_changed']} | {p['n_flipped']} | {p['to_legitimate']} | "
                     f"{p['to_phishing']} | {p['mean_delta']:+.2f} |")
    n = d.noise
    L += ["", "## Label-noise audit", "",
          f"Rows that all {n['min_models']} models score with |P(phishing) − label| ≥ {n['confident']}: "
          f"{n['n_flagged']} of {d.settings['rows']}. Per model: rows that model alone confidently contradicts.", "",
          "| source | rows | all models | " + " | ".join(m.name for m in d.models) + " |",
          "|---|---:|---:|" + "---:|" * len(d.models)]
    for src, v in n["per_source"].items():
        L.append(f"| {src} | {v['n']} | {v['flagged']} | "
                 + " | ".join(str(v.get("by_model", {}).get(m.name, "—")) for m in d.models) + " |")
    if n["examples"]:
        L += ["", "Examples (text shortened):", ""]
        for src, exs in n["examples"].items():
            for e in exs:
                ps = ", ".join(f"{k} {v:.2f}" for k, v in e["p"].items())
                L.append(f"- {src}, labelled **{e['label']}** (P: {ps}): “{e['text']}”")
    return "\n".join(L) + "\n"


def write_report(d: Diagnosis, out: Path, intro: str = "", extra_figures: Mapping[str, str] | None = None) -> Path:
    """``report.md`` + ``diagnosis.json`` + figures (``probes.png``, ``logit_lens.png``, ``flips.png``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = dict(extra_figures or {})
    figs["probes"] = plot_probes(d, out / "probes.png").name
    figs["lens"] = plot_lens(d, out / "logit_lens.png").name
    figs["flips"] = plot_flips(d, out / "flips.png").name
    (out / "diagnosis.json").write_text(json.dumps(d.to_dict(), indent=1, default=_json_default) + "\n")
    path = out / "report.md"
    path.write_text(to_markdown(d, figs, intro))
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
