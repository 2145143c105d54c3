"""The unseen-source benchmark (`phishlens evaluate --protocol unseen`, issue 13).

What users care about is how an adapter does on text from sources it never saw. The protocol:

- **Held-out sources** are the mix's ``held_out`` list (the same for every shipped mix). They are never
  used for training, early stopping, temperature or the served threshold: every split of them is fair game
  here, and nothing else.
- **Per style, a balanced set** like the hidden set the project is scored on: ``per_label`` legitimate and
  ``per_label`` phishing texts, each class spread as evenly as possible over the held-out sources of the
  style that have it (``mixes.allocate``), drawn deterministically by seed.
- **Two thresholds.** *served*: the bundle's own threshold (chosen on in-distribution validation rows),
  i.e. what a user gets. *nested*: for style S, the F1-optimal threshold on the held-out sets of the
  *other* styles (leave-one-style-out), so no number is ever scored at a threshold chosen on its own rows.
- **The peer**: TF-IDF + logistic regression trained on the same mix (train rows; threshold on its
  validation rows), scored on the same texts. Macro-F1 is the mean over styles.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phishlens.training.data.mixes import allocate
from phishlens.training.data.records import LABELS, STYLES, Record
from phishlens.training.evaluation.metrics import binary_metrics
from phishlens.training.evaluation.report import Scorer, _score_unique, sort_sources, style_of
from phishlens.training.model.calibration import choose_threshold

if TYPE_CHECKING:  # pragma: no cover
    from phishlens.training.data.splits import SplitSet

THRESHOLDS = ("served", "nested")


@dataclass(frozen=True)
class UnseenSet:
    """The held-out texts of one style, balanced per label."""

    style: str
    records: tuple[Record, ...]

    @property
    def sources(self) -> list[str]:
        return sort_sources({r.source for r in self.records})


def unseen_sets(
    splits: SplitSet, held_out: Iterable[str], per_label: int = 200, seed: int = 13
) -> dict[str, UnseenSet]:
    """Style -> balanced set drawn from every split of the held-out sources of that style.

    A style whose held-out sources lack a label is left out (F1 and FPR need both).
    """
    held = sort_sources(held_out)
    out: dict[str, UnseenSet] = {}
    for style in STYLES:
        srcs = [s for s in held if style_of(s) == style and s in splits.by_source]
        pools: dict[str, dict[str, list[Record]]] = {lab: {} for lab in LABELS}
        for s in srcs:
            rows = [r for sp in ("train", "validation", "test") for r in splits.rows(sp, [s])]
            for lab in LABELS:
                pool = sorted(
                    (r for r in rows if r.label == lab),
                    key=lambda r: hashlib.sha256(f"{seed}:{r.uid}".encode()).hexdigest(),
                )
                if pool:
                    pools[lab][s] = pool
        if not all(pools[lab] for lab in LABELS):
            continue
        recs: list[Record] = []
        for lab in LABELS:
            for s, n in allocate(per_label, {s: len(p) for s, p in pools[lab].items()}).items():
                recs += pools[lab][s][:n]
        random.Random(seed).shuffle(recs)
        out[style] = UnseenSet(style, tuple(recs))
    return out


@dataclass
class ModelResult:
    """One model on the unseen sets: metrics per style and per source at each threshold."""

    name: str
    kind: str  # "lora" | "tfidf"
    architecture: str
    threshold: float  # the served threshold
    nested_thresholds: dict[str, float]
    styles: dict[str, dict[str, dict[str, Any]]]  # style -> threshold kind -> metrics
    sources: dict[str, dict[str, dict[str, Any]]]  # source -> threshold kind -> metrics
    info: dict[str, Any] = field(default_factory=dict)
    # style -> {"flagged"|"unflagged": {n, accuracy}, "threshold", ...}: the served OOD flag (issue 13)
    ood: dict[str, dict[str, Any]] = field(default_factory=dict)

    def macro_f1(self, which: str = "served") -> float | None:
        f1s = [m[which]["f1"] for m in self.styles.values()]
        return None if not f1s or any(f is None for f in f1s) else float(np.mean(f1s))

    def max_fpr(self, which: str = "served") -> float | None:
        fprs = [m[which]["fpr"] for m in self.styles.values() if m[which]["fpr"] is not None]
        return max(fprs) if fprs else None


def nested_thresholds(p: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Style -> F1-optimal threshold on the pooled rows of the *other* styles (leave-one-style-out)."""
    out: dict[str, float] = {}
    for style in p:
        others = [s for s in p if s != style]
        if not others:
            continue
        out[style] = choose_threshold(
            np.concatenate([p[s] for s in others]), np.concatenate([y[s] for s in others])
        )
    return out


def score_sets(scorer: Scorer, sets: Mapping[str, UnseenSet], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Style -> P(phishing) of each text of the set (each distinct text scored once)."""
    return {
        style: _score_unique(scorer, [r.text for r in us.records], batch_size) for style, us in sets.items()
    }


def result_from_scores(
    p: Mapping[str, np.ndarray],
    threshold: float,
    sets: Mapping[str, UnseenSet],
    *,
    name: str,
    kind: str,
    architecture: str,
    info: dict[str, Any] | None = None,
) -> ModelResult:
    """Metrics per style and per source at the served and the nested thresholds."""
    y = {style: np.array([r.y for r in us.records], dtype=int) for style, us in sets.items()}
    nested = nested_thresholds(p, y)
    styles: dict[str, dict[str, dict[str, Any]]] = {}
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    for style, us in sets.items():
        cuts = {"served": threshold, "nested": nested.get(style, threshold)}
        styles[style] = {k: binary_metrics(y[style], p[style], t) for k, t in cuts.items()}
        src = np.array([r.source for r in us.records])
        for s in us.sources:
            i = src == s
            sources[s] = {k: binary_metrics(y[style][i], p[style][i], t) for k, t in cuts.items()}
    return ModelResult(
        name=name,
        kind=kind,
        architecture=architecture,
        threshold=float(threshold),
        nested_thresholds=nested,
        styles=styles,
        sources=sources,
        info=dict(info or {}),
    )


def evaluate_unseen(
    scorer: Scorer,
    threshold: float,
    sets: Mapping[str, UnseenSet],
    *,
    name: str,
    kind: str,
    architecture: str,
    batch_size: int = 64,
    info: dict[str, Any] | None = None,
) -> ModelResult:
    """Score every unseen text once; metrics per style and source at the served and nested thresholds."""
    return result_from_scores(
        score_sets(scorer, sets, batch_size),
        threshold,
        sets,
        name=name,
        kind=kind,
        architecture=architecture,
        info=info,
    )


def ood_accuracy(
    p: Mapping[str, np.ndarray],
    threshold: float,
    flagged: Mapping[str, np.ndarray],
    sets: Mapping[str, UnseenSet],
    ood_threshold: float,
    flag_rate: float,
) -> dict[str, dict[str, Any]]:
    """Style -> accuracy at the served threshold of the texts the OOD flag marks vs the ones it does not:
    the flag is useful when flagged texts are the ones the adapter gets wrong."""
    out: dict[str, dict[str, Any]] = {}
    for style, us in sets.items():
        y = np.array([r.y for r in us.records], dtype=int)
        right = (np.asarray(p[style]) >= threshold) == (y == 1)
        f = np.asarray(flagged[style], dtype=bool)
        row: dict[str, Any] = {
            "threshold": float(ood_threshold),
            "flag_rate": float(flag_rate),
            "flagged_share": float(f.mean()) if len(f) else None,
        }
        for name, m in (("flagged", f), ("unflagged", ~f)):
            row[name] = {"n": int(m.sum()), "accuracy": float(right[m].mean()) if m.any() else None}
        out[style] = row
    return out


def logit(p: np.ndarray | float) -> np.ndarray:
    """log(p / (1 - p)), clipped so that 0 and 1 stay finite."""
    q = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    return np.log(q) - np.log1p(-q)


def route_scores(
    sets: Mapping[str, UnseenSet], routes: Mapping[str, tuple[Mapping[str, np.ndarray], float]], detect: Any
) -> dict[str, np.ndarray]:
    """Scores of a style router: each text goes to the model of its *detected* style.

    ``routes``: style -> (that model's scores on every set, its served threshold). A routed score is the
    model's logit shifted by its own threshold's logit, so ``routed >= 0.5`` is exactly that model's
    served verdict and the router is served at 0.5. A text whose detected style has no route goes to
    the first route (a router's fallback).
    """
    fallback = next(iter(routes))
    out: dict[str, np.ndarray] = {}
    for style, us in sets.items():
        z = np.empty(len(us.records))
        for i, r in enumerate(us.records):
            target = detect(r.text)
            scores, t = routes[target] if target in routes else routes[fallback]
            z[i] = logit(scores[style][i]) - logit(t)
        out[style] = 1.0 / (1.0 + np.exp(-z))
    return out


def nested_choice(a: ModelResult, b: ModelResult) -> dict[str, tuple[str, float | None]]:
    """Style -> (the chosen model's name, its served F1): for style S, whichever of ``a`` and ``b`` has the
    higher mean served F1 on the *other* styles' unseen rows (leave-one-style-out, ties to ``a``).

    The honest form of "ship whichever wins": picking the model per style by its own unseen rows would tune
    to them; this score is what that choice is worth on a style that took no part in it.
    """
    styles = [s for s in a.styles if s in b.styles]

    def f1(m: ModelResult, s: str) -> float:
        v = m.styles[s]["served"]["f1"]
        return 0.0 if v is None else float(v)

    out: dict[str, tuple[str, float | None]] = {}
    for style in styles:
        others = [s for s in styles if s != style]
        if not others:
            continue
        pick = b if np.mean([f1(b, s) for s in others]) > np.mean([f1(a, s) for s in others]) else a
        out[style] = (pick.name, pick.styles[style]["served"]["f1"])
    return out


def _rule(m: ModelResult) -> str:
    """The served threshold and the rule it came from (`choose_threshold`)."""
    if m.info.get("routes"):
        return "each route's own"
    cap = m.info.get("max_fpr")
    return f"{m.threshold:.3f} ({'F1-best' if cap is None else f'F1-best with FPR ≤ {cap:g}'})"


def _f(v: float | None, nd: int = 2) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


@dataclass
class GeneralizationReport:
    """Models side by side on the same unseen sets."""

    per_label: int
    seed: int
    held_out: list[str]
    set_sizes: dict[str, dict[str, int]]  # style -> source -> rows
    models: list[ModelResult] = field(default_factory=list)
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for m, md in zip(self.models, d["models"]):
            md["macro_f1"] = {k: m.macro_f1(k) for k in THRESHOLDS}
            md["max_fpr"] = {k: m.max_fpr(k) for k in THRESHOLDS}
        d["choices"] = [
            {
                "generalist": g.name,
                "router": r.name,
                "per_style": {s: {"model": n, "f1": f} for s, (n, f) in c.items()},
            }
            for g, r, c in self.choices()
        ]
        return d

    def to_json(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    def _styles(self) -> list[str]:
        return [s for s in STYLES if any(s in m.styles for m in self.models)]

    def to_markdown(self) -> str:
        styles = self._styles()
        lines = [
            "# Generalization to unseen sources",
            "",
            "Held-out sources (never used for training, early stopping, temperature or the served "
            "threshold): "
            f"{', '.join(f'`{s}`' for s in self.held_out)}. Per style {self.per_label} phishing and "
            f"{self.per_label} legitimate texts (seed {self.seed}), spread evenly over the held-out sources "
            "that have each class.",
            "",
        ]
        if self.command:
            lines += [f"Reproduce: `{self.command}`", ""]
        for which, title in (
            ("served", "At the served threshold (what a user gets)"),
            ("nested", "At the nested threshold (chosen on the other styles' unseen sources)"),
        ):
            served = which == "served"
            lines += [
                f"## {title}",
                "",
                "| model | "
                + " | ".join(f"{s} F1 (P / R / FPR)" for s in styles)
                + " | macro F1 | max FPR |"
                + (" threshold (rule on validation) |" if served else ""),
                "|---|" + "---:|" * (len(styles) + 2 + served),
            ]
            for m in self.models:
                cells = []
                for s in styles:
                    mm = m.styles.get(s, {}).get(which)
                    cells.append(
                        "–"
                        if mm is None
                        else f"{_f(mm['f1'])} ({_f(mm['precision'])} / {_f(mm['recall'])} / {_f(mm['fpr'])})"
                    )
                lines.append(
                    f"| {m.name} [{m.architecture}] | "
                    + " | ".join(cells)
                    + f" | **{_f(m.macro_f1(which))}** | {_f(m.max_fpr(which))} |"
                    + (f" {_rule(m)} |" if served else "")
                )
            lines.append("")
        lines += self._choice_lines(styles)
        srcs = sort_sources({s for m in self.models for s in m.sources})
        lines += [
            "## Per source (served threshold)",
            "",
            "| model | " + " | ".join(f"`{s}` F1 / FPR / AUC" for s in srcs) + " |",
            "|---|" + "---:|" * len(srcs),
        ]
        for m in self.models:
            cells = []
            for s in srcs:
                mm = m.sources.get(s, {}).get("served")
                cells.append("–" if mm is None else f"{_f(mm['f1'])} / {_f(mm['fpr'])} / {_f(mm['roc_auc'])}")
            lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
        lines += self._ood_lines(styles)
        lines += [
            "",
            "Rows per style and source: "
            + "; ".join(
                f"{st}: " + ", ".join(f"{s} {n}" for s, n in d.items()) for st, d in self.set_sizes.items()
            ),
            "",
        ]
        return "\n".join(lines)

    def choices(self) -> list[tuple[ModelResult, ModelResult, dict[str, tuple[str, float | None]]]]:
        """(generalist, router, nested choice) for each router row naming the generalist it competes with."""
        by_name = {m.name: m for m in self.models}
        return [
            (by_name[m.info["generalist"]], m, nested_choice(by_name[m.info["generalist"]], m))
            for m in self.models
            if m.info.get("generalist") in by_name
        ]

    def _choice_lines(self, styles: list[str]) -> list[str]:
        rows = self.choices()
        if not rows:
            return []
        lines = [
            "## Generalist or routed, chosen per style on the other styles (nested)",
            "",
            "For each style, the model with the higher mean served F1 on the *other* styles' unseen rows, "
            "scored on this style: what choosing between the two on this benchmark is worth where the "
            "choice was not made.",
            "",
            "| choice | " + " | ".join(f"{s} F1 (model)" for s in styles) + " | macro F1 |",
            "|---|" + "---:|" * (len(styles) + 1),
        ]
        for gen, router, choice in rows:
            f1s = [choice[s][1] for s in styles if s in choice]
            macro = None if not f1s or any(f is None for f in f1s) else float(np.mean(f1s))
            cells = ["–" if s not in choice else f"{_f(choice[s][1])} ({choice[s][0]})" for s in styles]
            lines.append(f"| {gen.name} or {router.name} | " + " | ".join(cells) + f" | **{_f(macro)}** |")
        return lines + [""]

    def _ood_lines(self, styles: list[str]) -> list[str]:
        rows = [m for m in self.models if m.ood]
        if not rows:
            return []
        rate = next(iter(rows[0].ood.values()))["flag_rate"]
        lines = [
            "",
            "## Out-of-distribution flag (served threshold)",
            "",
            "Each result's `ood.flagged` as the server computes it (`explain/ood.py`: MiniLM kNN distance "
            f"to the adapter's reference, flagging {rate:.0%} of the reference texts). Accuracy of the "
            "flagged vs the unflagged unseen texts at the served threshold.",
            "",
            "| model | "
            + " | ".join(f"{s} flagged: n / acc | {s} unflagged: n / acc" for s in styles)
            + " |",
            "|---|" + "---:|" * (2 * len(styles)),
        ]
        for m in rows:
            cells = []
            for s in styles:
                o = m.ood.get(s)
                if o is None:
                    cells += ["–", "–"]
                    continue
                for k in ("flagged", "unflagged"):
                    cells.append(f"{o[k]['n']} / {_f(o[k]['accuracy'])}")
            lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
        return lines

    def to_png(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        styles = self._styles()
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        width = 0.8 / max(1, len(self.models))
        for ax, metric, title in (
            (axes[0], "f1", "F1 on unseen sources (served threshold)"),
            (axes[1], "fpr", "false-positive rate on unseen legitimate text"),
        ):
            for i, m in enumerate(self.models):
                vals = [m.styles.get(s, {}).get("served", {}).get(metric) or 0.0 for s in styles]
                ax.bar(np.arange(len(styles)) + i * width, vals, width, label=m.name)
            ax.set_xticks(np.arange(len(styles)) + width * (len(self.models) - 1) / 2, styles)
            ax.set_ylim(0, 1)
            ax.set_title(title, fontsize=10)
        axes[1].axhline(0.05, color="k", lw=0.8, ls="--")
        axes[0].legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def report_sets(sets: Mapping[str, UnseenSet]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for style, us in sets.items():
        counts: dict[str, int] = {}
        for r in us.records:
            counts[r.source] = counts.get(r.source, 0) + 1
        out[style] = counts
    return out


def held_out_of(mixes: Sequence[Any]) -> list[str]:
    """The sources held out of *every* given mix (a source any mix trained on is not unseen)."""
    held = set(mixes[0].held_out)
    for m in mixes[1:]:
        held &= set(m.held_out)
    trained = {s for m in mixes for s in m.sources}
    return sort_sources(held - trained)
