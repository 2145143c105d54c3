"""The diagnosis report: ``report.md`` (evidence tables and the verdict), ``diagnosis.json`` and PNG
figures."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..minimal_pairs import EDITS
from .evidence import Diagnosis
from .verdict import _peak, verdict


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
            ax.plot(
                m.label_probe_transfer,
                color="tab:red",
                linestyle="--",
                linewidth=0.9,
                label="label (bundle probe)",
            )
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
        _layer_axes(
            ax,
            m,
            f"{m.name} (seen: {', '.join(m.seen_styles)})",
            (-0.02, 1.02),
            "mean P(phishing)",
            "upper left",
        )
    fig.suptitle(
        "Logit lens per style (solid: phishing rows, dashed: legit rows; dotted: threshold)", fontsize=9
    )
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


_BUNDLE_PROBES = (
    "label",
    "style",
    "source",
    "concept.has_url",
    "concept.urgency",
    "concept.html",
    "concept.sender_cue",
    "concept.brand",
)


def to_markdown(d: Diagnosis, figures: Mapping[str, str], intro: str = "") -> str:
    L: list[str] = ["# Generalisation diagnosis", ""]
    if intro:
        L += [intro, ""]
    s = d.settings
    L += [
        f"Sample: {s['rows']} test rows ({s.get('per_label', '?')} per label per source, seed {s['seed']}); "
        f"SHAP: {s['shap_per_style']} short texts per style per model, {s['shap_evals']} evaluations each. "
        f"Run time {s.get('seconds', '?')} s on {s.get('host', 'this host')}. "
        f"Reproduce: `{s.get('command', 'phishlens diagnose')}`.",
        "",
    ]
    if "matrix" in figures:
        L += [
            "## Cross-domain matrix",
            "",
            f"![cross-domain F1]({figures['matrix']})",
            "",
            "F1 on the test split per domain (from `docs/eval/matrix.json`); hatched = unseen in training.",
            "",
        ]
    L += ["## Verdict", ""]
    for f in verdict(d):
        L.append(f"- **{f.mode}** — {', '.join(f.models)}")
        for e in f.evidence:
            L.append(f"  - {e}")
    L += [
        "",
        "## Errors by style on this sample",
        "",
        "| model | style | n | accuracy | FPR | FNR | mean P legit rows | mean P phishing rows "
        "| lens settles (median layer) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in d.models:
        for st, r in m.by_style.items():
            seen = "" if st in m.seen_styles else "*"
            L.append(
                f"| {m.name} | {st}{seen} | {r['n']} | {_fmt(r['accuracy'])} | {_fmt(r['fpr'])} "
                f"| {_fmt(r['fnr'])} | {_fmt(r['mean_p_legit_rows'])} | {_fmt(r['mean_p_phishing_rows'])} "
                f"| {_fmt(m.decision_layers.get(st))} |"
            )
    L += ["", "`*` = style unseen in training.", "", "## Where the decision forms", ""]
    if "lens" in figures:
        L += [f"![logit lens]({figures['lens']})", ""]
    if "probes" in figures:
        L += [f"![probe accuracy]({figures['probes']})", ""]
    L += [
        "| model | label peak (layer) | style peak (layer) | source peak (layer) / chance "
        "| label probe at last layer | bundle label probe on this sample (last layer) |",
        "|---|---|---|---|---:|---:|",
    ]
    for m in d.models:
        cells = []
        for k in ("label", "style", "source"):
            pk = _peak(m.probe_accuracy, k)
            cells.append(
                "—"
                if not pk
                else f"{pk[0]:.2f} ({pk[1]})"
                + (f" / {m.probe_accuracy[k]['baseline']:.2f}" if k == "source" else "")
            )
        last = m.probe_accuracy.get("label", {}).get("accuracy", [float("nan")])[-1]
        tr = m.label_probe_transfer[-1] if m.label_probe_transfer else None
        L.append(f"| {m.name} | " + " | ".join(cells) + f" | {_fmt(last)} | {_fmt(tr)} |")
    if any(m.bundle_probe_accuracy for m in d.models):
        L += [
            "",
            "Probes stored in each bundle (trained on its validation rows: the training distribution), peak "
            "held-out accuracy (layer) / majority baseline:",
            "",
            "| model | " + " | ".join(_BUNDLE_PROBES) + " |",
            "|---|" + "---|" * len(_BUNDLE_PROBES),
        ]
        for m in d.models:
            cells = []
            for k in _BUNDLE_PROBES:
                pk = _peak(m.bundle_probe_accuracy, k)
                cells.append(
                    "—" if not pk else f"{pk[0]:.2f} ({pk[1]}) / {m.bundle_probe_accuracy[k]['baseline']:.2f}"
                )
            L.append(f"| {m.name} | " + " | ".join(cells) + " |")
    L += ["", "## What the models read (SHAP, mean value per word over the explained texts)", ""]
    for m in d.models:
        for st, e in m.shap.items():
            ph = ", ".join(f"{w} ({v:+.2f})" for w, v in e["top_phishing"][:6]) or "—"
            lg = ", ".join(f"{w} ({v:+.2f})" for w, v in e["top_legitimate"][:6]) or "—"
            L.append(
                f"- {m.name} / {st} ({e['n_texts']} texts): towards phishing: {ph}; towards legitimate: {lg}"
            )
    L += ["", "## Minimal pairs", ""]
    if "flips" in figures:
        L += [f"![flip rates]({figures['flips']})", ""]
    L += [
        "| model | edit | texts changed | flipped | → legitimate | → phishing | mean ΔP |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for m in d.models:
        for p in m.pairs:
            L.append(
                f"| {m.name} | {p['edit']} | {p['n_changed']} | {p['n_flipped']} | {p['to_legitimate']} | "
                f"{p['to_phishing']} | {p['mean_delta']:+.2f} |"
            )
    n = d.noise
    L += [
        "",
        "## Label-noise audit",
        "",
        f"Rows that all {n['min_models']} models score with |P(phishing) − label| ≥ {n['confident']}: "
        f"{n['n_flagged']} of {d.settings['rows']}. "
        "Per model: rows that model alone confidently contradicts.",
        "",
        "| source | rows | all models | " + " | ".join(m.name for m in d.models) + " |",
        "|---|---:|---:|" + "---:|" * len(d.models),
    ]
    for src, v in n["per_source"].items():
        L.append(
            f"| {src} | {v['n']} | {v['flagged']} | "
            + " | ".join(str(v.get("by_model", {}).get(m.name, "—")) for m in d.models)
            + " |"
        )
    if n["examples"]:
        L += ["", "Examples (text shortened):", ""]
        for src, exs in n["examples"].items():
            for e in exs:
                ps = ", ".join(f"{k} {v:.2f}" for k, v in e["p"].items())
                L.append(f"- {src}, labelled **{e['label']}** (P: {ps}): “{e['text']}”")
    return "\n".join(L) + "\n"


def write_report(
    d: Diagnosis, out: Path, intro: str = "", extra_figures: Mapping[str, str] | None = None
) -> Path:
    """``report.md`` + ``diagnosis.json`` + figures (``probes.png``, ``logit_lens.png``, ``flips.png``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = dict(extra_figures or {})
    figs["probes"] = plot_probes(d, out / "probes.png").name
    figs["lens"] = plot_lens(d, out / "logit_lens.png").name
    figs["flips"] = plot_flips(d, out / "flips.png").name
    data = {**d.to_dict(), "findings": [f.to_dict() for f in verdict(d)]}
    (out / "diagnosis.json").write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    path = out / "report.md"
    path.write_text(to_markdown(d, figs, intro))
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
