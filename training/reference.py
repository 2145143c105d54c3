"""Bundle artefact: the drift reference profile (`reference.json` + `reference.safetensors`).

Scores the validation rows with the bundle's own model (calibrated P(phishing), exactly as served),
embeds them with MiniLM, and hands both to `explain.reference.build_profile`, which computes the feature
distributions and calibrates the thresholds (DESIGN.md §6).
"""

from __future__ import annotations

import logging

import numpy as np
from phishlens.explain.embed import MODEL_ID, Embedder
from phishlens.explain.reference import build_profile

from .artifacts import ArtifactContext

logger = logging.getLogger(__name__)
SCORES_KEY = "validation_p_phishing"  # ctx.cache key: other builders may reuse the scores
EMBED_MAX_TOKENS = 128


def validation_scores(ctx: ArtifactContext) -> np.ndarray:
    """Calibrated P(phishing) of each validation row through the bundle's adapter (one full forward each)."""
    if SCORES_KEY in ctx.cache:
        return np.asarray(ctx.cache[SCORES_KEY])
    import torch

    from .train import CachedScorer

    tok = ctx.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    scorer = CachedScorer(ctx.model, ctx.encoder, 0, ctx.manifest.label_token_ids, pad,
                          temperature=ctx.manifest.calibration.temperature, cache={})
    with torch.inference_mode():
        p = np.concatenate([scorer([r.text for r in ctx.validation[i:i + 64]])
                            for i in range(0, len(ctx.validation), 64)])
    ctx.cache[SCORES_KEY] = p
    return p


def build_reference(ctx: ArtifactContext) -> dict[str, str]:
    texts = [r.text for r in ctx.validation]
    if len(texts) < 40:
        raise ValueError(f"{ctx.manifest.name}: {len(texts)} validation rows; a reference profile needs >= 40")
    p = validation_scores(ctx)
    emb = Embedder(max_tokens=EMBED_MAX_TOKENS)(texts)
    profile = build_profile(ctx.manifest.name, texts, p, emb, embed_model=MODEL_ID,
                            embed_max_tokens=EMBED_MAX_TOKENS, seed=ctx.seed)
    logger.info("reference for %s: %d rows, simulated false-alarm rate per window %s", ctx.manifest.name,
                len(texts), profile.false_alarm)
    return profile.save(ctx.bundle_dir)
