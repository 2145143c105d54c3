"""`phishlens evaluate`: adapters (and TF-IDF peers) × test domains → the cross-domain matrix.

Adapters that share a base, prompt and split layer share the frozen-lower-layer cache, so each
extra adapter costs only its top layers on the evaluation texts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from .bundle import load_bundle
from .evaluate import CrossDomainMatrix, EvalReport, eval_sets, evaluate_scorer

logger = logging.getLogger(__name__)


def run_evaluation(adapters: Sequence[Path], out: Path, per_label: int = 100, tfidf: bool = True,
                   data_root: Path | None = None, from_manifests: bool = False,
                   progress: bool = False) -> CrossDomainMatrix:
    """Build the matrix. ``from_manifests``: take each bundle's stored metrics (scored at training time
    on the same seeded test samples) instead of re-scoring; only the TF-IDF peers are trained here.
    ``progress``: a bar per scored model on stderr (texts scored)."""
    import sys

    from peft import PeftModel
    from tqdm import tqdm

    from .base_models import resolve_base
    from .mixes import build_mix, load_mix
    from .prompt import PromptEncoder
    from .splits import load_splits
    from .train import CachedScorer, load_model

    splits = load_splits(data_root)
    sets = eval_sets(splits, per_label=per_label)
    matrix = CrossDomainMatrix()
    bundles = [load_bundle(p) for p in adapters]
    scorers: dict[tuple, CachedScorer] = {}
    models: dict[str, object] = {}
    for b in bundles:
        m = b.manifest
        if from_manifests:
            report = EvalReport.from_dict(m.metrics, list(m.training_data.sources), m.calibration.threshold)
            matrix.add(b.name, report, architecture=m.base_model.architecture)
            continue
        base = resolve_base(m.base_model.ref)
        if base.sha256 != m.base_model.sha256:
            raise ValueError(f"{b.name}: base weights differ from the ones it was trained on")
        if base.sha256 not in models:
            tok, model = load_model(base)
            models[base.sha256] = (tok, PeftModel.from_pretrained(model, str(b.path), adapter_name=b.name).eval())
        else:
            models[base.sha256][1].load_adapter(str(b.path), adapter_name=b.name)
        tok, peft_model = models[base.sha256]
        peft_model.set_adapter(b.name)
        split = min(m.lora.layers) if m.lora.layers else 0
        key = (base.sha256, m.prompt.template, m.prompt.max_text_tokens, split)
        if key not in scorers:
            enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
            pad = tok.pad_token_id if tok.pad_token_id is not None else 0
            scorers[key] = CachedScorer(peft_model, enc, split, m.label_token_ids, pad)
        scorer = scorers[key]
        scorer.label_ids = m.label_token_ids
        scorer.temperature = m.calibration.temperature
        seen = list(m.training_data.sources)
        logger.info("evaluating %s", b.name)
        with tqdm(desc=f"evaluate {b.name}", unit="text", disable=not progress, file=sys.stderr,
                  mininterval=2) as bar:
            report = evaluate_scorer(scorer, m.calibration.threshold, sets, seen, progress=bar)
        matrix.add(b.name, report, architecture=m.base_model.architecture)
    if tfidf:
        from .tfidf import ARCHITECTURE, train_tfidf

        for mix_name in dict.fromkeys(b.manifest.training_data.mix for b in bundles):
            try:
                spec = load_mix(mix_name)
            except FileNotFoundError:
                continue
            peer = train_tfidf(build_mix(spec, splits))
            report = evaluate_scorer(peer, peer.threshold, sets, list(spec.sources))
            matrix.add(f"tfidf-{mix_name}", report, architecture=ARCHITECTURE, kind="tfidf")
    out.mkdir(parents=True, exist_ok=True)
    matrix.to_json(out / "matrix.json")
    (out / "matrix.md").write_text(matrix.to_markdown() + "\n")
    matrix.to_png(out / "matrix.png")
    return matrix
