"""Verdict rules of the diagnosis: each rule reads the evidence (explain.diagnose.evidence) and returns typed
`Finding`s, a named failure mode with the models concerned and the numbers behind it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..probes import peak_layer
from .evidence import STYLES, Diagnosis


@dataclass(frozen=True)
class Finding:
    """One failure mode: `mode` names it, `evidence` are human-readable numbers behind it."""

    mode: str
    models: list[str]
    evidence: list[str]
    style: str | None = None  # the style concerned, for per-style modes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "models": self.models}
        if self.style is not None:
            out["style"] = self.style
        out["evidence"] = self.evidence
        return out


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


def out_of_style(d: Diagnosis) -> list[Finding]:
    """Specialists failing on the styles they never saw, and how (over-calling, missing, both)."""
    findings: list[Finding] = []
    generalists = [m for m in d.models if set(m.seen_styles) >= set(STYLES)]
    ref = generalists[0] if generalists else None
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
            mode = (
                "errs both ways outside its style"
                if min(f0, n0) >= 0.25
                else "over-calls phishing outside its style"
                if f0 >= n0
                else "misses phishing outside its style"
            )
            ev = [f"sample {s}: FPR {fpr:.2f}, FNR {fnr:.2f} (n={st['n']})"]
            if f1 is not None:
                ev.append(
                    f"matrix F1 on {s}: {f1:.2f}"
                    + (f" vs {ref.name} {ref_f1:.2f}" if ref and ref_f1 is not None else "")
                )
            ev.append(
                f"mean served P(phishing) on {s} legit rows {st['mean_p_legit_rows']:.2f}, "
                f"on {s} phishing rows {st['mean_p_phishing_rows']:.2f}"
            )
            frozen = min(m.adapted_layers) - 1 if m.adapted_layers else None
            legit = m.lens_curves.get(s, {}).get("legitimate")
            if frozen is not None and frozen >= 0 and legit:
                own = [
                    m.lens_curves[o]["legitimate"]
                    for o in m.seen_styles
                    if "legitimate" in m.lens_curves.get(o, {})
                ]
                ev.append(
                    f"logit lens on {s} legit rows: {legit[frozen]:.2f} "
                    f"after the frozen base (layer {frozen}), "
                    f"{legit[-1]:.2f} after the adapter"
                    + (f" (own style: {own[0][frozen]:.2f} → {own[0][-1]:.2f})" if own else "")
                )
            top = m.shap.get(s, {}).get("top_phishing", [])[:4]
            if top:
                ev.append("SHAP words pushing to phishing on " + s + ": " + ", ".join(w for w, _ in top))
            findings.append(Finding(f"out-of-style failure: {mode}", [m.name], ev, style=s))
    return findings


def shortcut_risk(d: Diagnosis) -> list[Finding]:
    """Style or source more decodable than the label (on this sample, or in the bundle's own probes)."""
    findings: list[Finding] = []
    for m in d.models:
        lab, sty, src = (_peak(m.probe_accuracy, k) for k in ("label", "style", "source"))
        if not lab:
            continue
        ev = [
            f"peak held-out probe accuracy: label {lab[0]:.2f} (layer {lab[1]})"
            + (f", style {sty[0]:.2f} (layer {sty[1]})" if sty else "")
            + (
                f", source {src[0]:.2f} (layer {src[1]}, chance {m.probe_accuracy['source']['baseline']:.2f})"
                if src
                else ""
            )
        ]
        risky = [n for n, v in (("style", sty), ("source", src)) if v and v[0] >= lab[0]]
        if risky:
            findings.append(
                Finding(
                    "shortcut risk: " + " and ".join(risky) + " more decodable than the label", [m.name], ev
                )
            )
        # the bundle's own probes, on its (in-domain) validation rows
        blab, bsrc = _peak(m.bundle_probe_accuracy, "label"), _peak(m.bundle_probe_accuracy, "source")
        if blab and bsrc and bsrc[0] >= blab[0]:
            findings.append(
                Finding(
                    "shortcut risk on the training distribution: source more decodable than the label",
                    [m.name],
                    [
                        f"bundle probes (validation rows): source {bsrc[0]:.2f} at layer {bsrc[1]} "
                        f"(majority {m.bundle_probe_accuracy['source']['baseline']:.2f}) vs label "
                        f"{blab[0]:.2f} at layer {blab[1]}"
                    ],
                )
            )
    return findings


def cue_shortcuts(d: Diagnosis) -> list[Finding]:
    """Minimal pairs whose edit flips at least 15 % of the changed verdicts."""
    findings: list[Finding] = []
    for m in d.models:
        for pr in m.pairs:
            if pr["n_changed"] >= 5 and pr["flip_rate"] is not None and pr["flip_rate"] >= 0.15:
                findings.append(
                    Finding(
                        f"cue shortcut: {pr['edit']} flips the verdict",
                        [m.name],
                        [
                            f"{pr['n_flipped']}/{pr['n_changed']} verdicts flip "
                            f"({pr['to_legitimate']} to legitimate, {pr['to_phishing']} to phishing); "
                            f"mean ΔP {pr['mean_delta']:+.2f}"
                        ],
                    )
                )
    return findings


def label_noise(d: Diagnosis) -> list[Finding]:
    """Sources with at least two rows every model confidently contradicts."""
    noisy = {s: v for s, v in d.noise["per_source"].items() if v["flagged"] >= 2}
    if not noisy:
        return []
    return [
        Finding(
            "label noise: rows every model confidently contradicts",
            [m.name for m in d.models],
            [f"{s}: {v['flagged']}/{v['n']} rows" for s, v in noisy.items()],
        )
    ]


def adapter_layers(d: Diagnosis) -> list[Finding]:
    """The verdict forms in the adapter's layers (the frozen base does not yet separate the classes)."""
    findings: list[Finding] = []
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
        ev = [
            "logit lens settles at median layer "
            + ", ".join(f"{s} {v:.0f}" for s, v in m.decision_layers.items() if v is not None)
            + f"; the adapter acts on layers {min(m.adapted_layers)}-{max(m.adapted_layers)}",
            f"legit rows read P(phishing) after the frozen base (layer {frozen}) → after the adapter: "
            + ", ".join(f"{s} {prior[s]:.2f} → {final[s]:.2f}" for s in prior),
            f"label probe: best {below:.2f} on the frozen layers 0-{frozen} "
            f"(majority {lab['baseline']:.2f}), "
            f"{lab['accuracy'][-1]:.2f} at the last layer",
        ]
        findings.append(Finding("the verdict is formed in the adapter's layers", [m.name], ev))
    return findings


Rule = Callable[[Diagnosis], list[Finding]]
RULES: tuple[Rule, ...] = (out_of_style, shortcut_risk, cue_shortcuts, label_noise, adapter_layers)


def verdict(d: Diagnosis, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Named failure modes, each with the models concerned and the evidence (numbers) behind it."""
    return [f for rule in rules for f in rule(d)]
