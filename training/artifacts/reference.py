"""Bundle artefact: the drift reference profile (`reference.json` + `reference.safetensors`).

Scores the validation rows with the bundle's own model (calibrated P(phishing), exactly as served: the
model-dependent features need rows it never trained on), adds up to 300 training rows per (style, label)
for the model-independent ones (style features, MiniLM embedding, words), and hands both, with their
labels, to `explain.reference.build_profile`, which keeps every statistic per class and calibrates the
thresholds at several prevalences and source blends (DESIGN.md §6).
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from phishlens.explain.embed import MODEL_ID, Embedder
from phishlens.explain.reference import build_profile
from phishlens.training.artifacts.context import ArtifactContext
from phishlens.training.model.loading import CachedScorer

logger = logging.getLogger(__name__)
SCORES_KEY = "validation_p_phishing"  # ctx.cache key: other builders may reuse the scores
EMBED_MAX_TOKENS = 128
STYLE_ROWS_PER_STYLE_LABEL = 300  # training rows per (style, label) added for style and embedding features


def validation_scores(ctx: ArtifactContext) -> np.ndarray:
    """Calibrated P(phishing) of each validation row through the bundle's adapter (one full forward each)."""
    if SCORES_KEY in ctx.cache:
        return np.asarray(ctx.cache[SCORES_KEY])
    import torch

    tok = ctx.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    scorer = CachedScorer(
        ctx.model,
        ctx.encoder,
        0,
        ctx.manifest.label_token_ids,
        pad,
        temperature=ctx.manifest.calibration.temperature,
        cache={},
    )
    order = np.argsort([len(r.text) for r in ctx.validation], kind="stable")  # batches of similar length
    texts = [ctx.validation[i].text for i in order]
    p = np.empty(len(texts))
    with torch.inference_mode():
        for i in range(0, len(texts), 16):
            p[order[i : i + 16]] = scorer(texts[i : i + 16])
    ctx.cache[SCORES_KEY] = p
    return p


def style_rows(ctx: ArtifactContext, per_style_label: int = STYLE_ROWS_PER_STYLE_LABEL) -> list:
    """Up to `per_style_label` of the mix's training rows per (style, label), deterministic: extra rows for
    the model-independent reference features (style, embedding, words)."""
    groups: dict[tuple[str, str], list] = {}
    for r in ctx.train:
        groups.setdefault((r.style, r.label), []).append(r)
    out = []
    for key in sorted(groups):
        rows = sorted(
            groups[key], key=lambda r: hashlib.sha256(f"{ctx.seed}:ref:{r.uid}".encode()).hexdigest()
        )
        out += rows[:per_style_label]
    return out


def build_reference(ctx: ArtifactContext) -> dict[str, str]:
    """Score and label the held-out (validation) rows, add capped training rows for style and embedding."""
    texts = [r.text for r in ctx.validation]
    labels = [r.label for r in ctx.validation]
    n_pos = sum(lab == "phishing" for lab in labels)
    if min(n_pos, len(labels) - n_pos) < 10:
        raise ValueError(
            f"{ctx.manifest.name}: {n_pos} phishing and {len(labels) - n_pos} legitimate validation "
            "rows; a reference profile needs >= 10 of each"
        )
    import sys

    from tqdm import tqdm

    # Stage bar (each stage is one batched call): scoring, two embedding passes, threshold simulation.
    with tqdm(
        total=4, desc=f"{ctx.manifest.name}: reference", unit="stage", file=sys.stderr, leave=False
    ) as bar:
        bar.set_postfix_str(f"scoring {len(texts)} validation rows")
        p = validation_scores(ctx)
        bar.update(1)
        extra = style_rows(ctx)
        embed = Embedder(max_tokens=EMBED_MAX_TOKENS)
        bar.set_postfix_str(f"embedding {len(texts)} + {len(extra)} rows")
        emb = embed(texts)
        bar.update(1)
        extra_emb = embed([r.text for r in extra]) if extra else None
        bar.update(1)
        bar.set_postfix_str("calibrating thresholds")
        # the calibration (temperature) was fitted on exactly these validation rows: their phishing share is
        # the prior the served probabilities are calibrated under
        profile = build_profile(
            ctx.manifest.name,
            texts,
            p,
            labels,
            emb,
            calibration_prior=n_pos / len(labels),
            extra_texts=[r.text for r in extra],
            extra_labels=[r.label for r in extra],
            extra_embeddings=extra_emb,
            embed_model=MODEL_ID,
            embed_max_tokens=EMBED_MAX_TOKENS,
            seed=ctx.seed,
            # each row's corpus: thresholds hold for the training sources in other blends too (issue 19)
            sources=[r.source for r in ctx.validation],
            extra_sources=[r.source for r in extra],
        )
        bar.update(1)
    logger.info(
        "reference for %s: %d scored rows, %d style rows, simulated false-alarm rate per window %s",
        ctx.manifest.name,
        profile.n_rows,
        profile.n_style_rows,
        profile.false_alarm,
    )
    return profile.save(ctx.bundle_dir)
