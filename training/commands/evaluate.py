"""`phishlens evaluate`: adapters (and TF-IDF peers) × test domains → the cross-domain matrix.

Adapters that share a base, prompt and split layer share the frozen-lower-layer cache, so each
extra adapter costs only its top layers on the evaluation texts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phishlens.training.contract.bundle import Bundle, load_bundle
from phishlens.training.evaluation.matrix import CrossDomainMatrix
from phishlens.training.evaluation.report import EvalReport, eval_sets, evaluate_scorer
from phishlens.training.model.loading import AdapterModel, CachedScorer, load_adapter_model
from phishlens.training.model.state_cache import StateCache, disk_root, namespace

if TYPE_CHECKING:  # pragma: no cover
    from phishlens.explain.ood import OodModel
    from phishlens.training.evaluation.generalization import GeneralizationReport

logger = logging.getLogger(__name__)


def adapter_scorers(bundles: Sequence[Bundle]) -> Iterator[tuple[Bundle, CachedScorer]]:
    """Each bundle with a scorer of calibrated P(phishing), its adapter active while it is yielded.

    Bundles of one base share one peft model (`load_adapter_model`); those with the same prompt and split
    layer share the frozen-lower-layer cache, so each extra adapter costs only its top layers on the texts.
    """
    scorers: dict[tuple, CachedScorer] = {}
    models: dict[str, AdapterModel] = {}  # by base sha256
    for b in bundles:
        m = b.manifest
        am = models[m.base_model.sha256] = load_adapter_model(b, into=models.get(m.base_model.sha256))
        split = min(m.lora.layers) if m.lora.layers else 0
        key = (am.base.sha256, m.prompt.template, m.prompt.max_text_tokens, split)
        if key not in scorers:
            cache = StateCache(
                namespace(am.base.sha256, m.prompt.template, m.prompt.max_text_tokens, split), disk_root()
            )
            scorers[key] = CachedScorer(
                am.model, am.encoder(b), split, m.label_token_ids, am.pad_id, cache=cache
            )
        scorer = scorers[key]
        scorer.label_ids = m.label_token_ids
        scorer.temperature = m.calibration.temperature
        yield b, scorer


def peer_rules(bundles: Sequence[Bundle]) -> dict[str, float | None]:
    """Mix -> `max_fpr` of the adapter trained on it: each TF-IDF peer is thresholded by its adapter's rule,
    so the two compare fairly."""
    return {b.manifest.training_data.mix: b.manifest.calibration.max_fpr for b in bundles}


def run_evaluation(
    adapters: Sequence[Path],
    out: Path,
    per_label: int = 100,
    tfidf: bool = True,
    data_root: Path | None = None,
    from_manifests: bool = False,
    progress: bool = False,
) -> CrossDomainMatrix:
    """Build the matrix. ``from_manifests``: take each bundle's stored metrics (scored at training time
    on the same seeded test samples) instead of re-scoring; only the TF-IDF peers are trained here.
    ``progress``: a bar per scored model on stderr (texts scored)."""
    import sys

    from tqdm import tqdm

    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits

    splits = load_splits(data_root)
    sets = eval_sets(splits, per_label=per_label)
    matrix = CrossDomainMatrix()
    bundles = [load_bundle(p) for p in adapters]
    if from_manifests:
        for b in bundles:
            m = b.manifest
            report = EvalReport.from_dict(m.metrics, list(m.training_data.sources), m.calibration.threshold)
            matrix.add(b.name, report, architecture=m.base_model.architecture)
    else:
        for b, scorer in adapter_scorers(bundles):
            m = b.manifest
            logger.info("evaluating %s", b.name)
            with tqdm(
                desc=f"evaluate {b.name}", unit="text", disable=not progress, file=sys.stderr, mininterval=2
            ) as bar:
                report = evaluate_scorer(
                    scorer, m.calibration.threshold, sets, list(m.training_data.sources), progress=bar
                )
            matrix.add(b.name, report, architecture=m.base_model.architecture)
    if tfidf:
        from phishlens.training.model.tfidf import ARCHITECTURE, train_tfidf

        rule = peer_rules(bundles)
        for mix_name in rule:
            try:
                spec = load_mix(mix_name)
            except FileNotFoundError:
                continue
            peer = train_tfidf(build_mix(spec, splits), max_fpr=rule[mix_name])
            report = evaluate_scorer(peer, peer.threshold, sets, list(spec.sources))
            matrix.add(f"tfidf-{mix_name}", report, architecture=ARCHITECTURE, kind="tfidf")
    out.mkdir(parents=True, exist_ok=True)
    matrix.to_json(out / "matrix.json")
    (out / "matrix.md").write_text(matrix.to_markdown() + "\n")
    matrix.to_png(out / "matrix.png")
    return matrix


def ood_model(bundle: Bundle) -> OodModel | None:
    """The bundle's OOD flag exactly as the server builds it (server/services/ood.py): its drift reference's
    embeddings, the threshold flagging the default 5 % of them; None without an embedding reference."""
    from phishlens.explain.ood import OodModel
    from phishlens.explain.reference import ReferenceProfile

    fname = bundle.manifest.extras.get("reference")
    if not fname:
        return None
    ref = ReferenceProfile.load(bundle.path / Path(fname).name)
    return OodModel.of(ref.embedding) if ref.embedding is not None else None


def run_unseen(
    adapters: Sequence[Path],
    out: Path,
    per_label: int = 200,
    tfidf: bool = True,
    data_root: Path | None = None,
    command: str = "",
    peer_mixes: Sequence[str] = (),
) -> GeneralizationReport:
    """The unseen-source benchmark (`training.generalization`): adapters and their mixes' TF-IDF peers."""
    from phishlens.training.contract.style import detect_style
    from phishlens.training.data.mixes import build_mix, load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.generalization import (
        GeneralizationReport,
        held_out_of,
        ood_accuracy,
        report_sets,
        result_from_scores,
        route_scores,
        score_sets,
        unseen_sets,
    )

    splits = load_splits(data_root)
    bundles = [load_bundle(p) for p in adapters]
    mixes = {name: load_mix(name) for name in dict.fromkeys(b.manifest.training_data.mix for b in bundles)}
    extra = {load_mix(p).name: load_mix(p) for p in peer_mixes}
    held = held_out_of(list(mixes.values()) + list(extra.values()))
    sets = unseen_sets(splits, held, per_label=per_label)
    report = GeneralizationReport(
        per_label=per_label, seed=13, held_out=held, set_sizes=report_sets(sets), command=command
    )
    specialists: dict[str, tuple[dict, float]] = {}  # style -> (scores, served threshold)
    generalist = next((b.name for b in bundles if len(mixes[b.manifest.training_data.mix].styles) > 1), None)
    embeddings: dict[int, dict[str, Any]] = {}  # OOD: MiniLM max_tokens -> style -> [n, dim], shared
    for b, scorer in adapter_scorers(bundles):
        m = b.manifest
        logger.info("scoring %s on unseen sources", b.name)
        p = score_sets(scorer, sets)
        report.models.append(
            result_from_scores(
                p,
                m.calibration.threshold,
                sets,
                name=b.name,
                kind="lora",
                architecture=m.base_model.architecture,
                info={"sha256": b.sha256, "mix": m.training_data.mix, "max_fpr": m.calibration.max_fpr},
            )
        )
        ood = ood_model(b)
        if ood is not None:
            if ood.max_tokens not in embeddings:
                from phishlens.explain.embed import Embedder

                embed = Embedder(max_tokens=ood.max_tokens)
                embeddings[ood.max_tokens] = {
                    st: embed([r.text for r in us.records]) for st, us in sets.items()
                }
            flags = {
                st: np.array([v.flagged for v in ood.verdicts(e)])
                for st, e in embeddings[ood.max_tokens].items()
            }
            report.models[-1].ood = ood_accuracy(
                p, m.calibration.threshold, flags, sets, ood.threshold, ood.flag_rate
            )
        mix_styles = mixes[m.training_data.mix].styles
        if len(mix_styles) == 1:
            specialists.setdefault(mix_styles[0], (p, m.calibration.threshold))
    if set(sets) <= set(specialists):
        report.models.append(
            result_from_scores(
                route_scores(sets, specialists, detect_style),
                0.5,
                sets,
                name="routed-specialists",
                kind="lora",
                architecture=report.models[0].architecture,
                info={"routes": "detected style -> specialist", "generalist": generalist},
            )
        )
    if tfidf:
        from phishlens.training.model.tfidf import ARCHITECTURE, train_tfidf

        peers: dict[str, tuple[dict, float]] = {}
        rule = peer_rules(bundles)
        all_mixes = {**mixes, **extra}
        peer_generalist = next((f"tfidf-{n}" for n, sp in all_mixes.items() if len(sp.styles) > 1), None)
        for name, spec in all_mixes.items():
            peer = train_tfidf(build_mix(spec, splits), max_fpr=rule.get(name))
            p = score_sets(peer, sets)
            report.models.append(
                result_from_scores(
                    p,
                    peer.threshold,
                    sets,
                    name=f"tfidf-{name}",
                    kind="tfidf",
                    architecture=ARCHITECTURE,
                    info={"mix": name, "max_fpr": rule.get(name)},
                )
            )
            if len(spec.styles) == 1:
                peers.setdefault(spec.styles[0], (p, peer.threshold))
        if set(sets) <= set(peers):
            report.models.append(
                result_from_scores(
                    route_scores(sets, peers, detect_style),
                    0.5,
                    sets,
                    name="tfidf-routed-specialists",
                    kind="tfidf",
                    architecture=ARCHITECTURE,
                    info={"routes": "detected style -> specialist peer", "generalist": peer_generalist},
                )
            )
    out.mkdir(parents=True, exist_ok=True)
    report.to_json(out / "generalization.json")
    (out / "generalization.md").write_text(report.to_markdown())
    report.to_png(out / "generalization.png")
    return report
