"""Bundle artefact: linear probes per layer, trained on the bundle's validation rows (DESIGN.md §3).

``build_probes(ctx)`` runs the adapter (same weights as served) over at most ``MAX_ROWS``
validation rows (a per-source stratified cap keeps it cheap: one forward per row), pools the
hidden states at the answer position, and fits probes for the label, the style, the source and
the heuristic concepts (`phishlens.explain.concepts`). Files: ``probes.safetensors`` + ``probes.json``.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence

from phishlens.training.artifacts.context import ArtifactContext
from phishlens.training.data.records import Record

logger = logging.getLogger(__name__)
MAX_ROWS = 400


def cap_rows(rows: Sequence[Record], max_rows: int = MAX_ROWS, seed: int = 13) -> list[Record]:
    """At most ``max_rows`` rows, shared evenly over (source, label) groups (small groups kept whole)."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in rows:
        groups[(r.source, r.label)].append(r)
    rng = random.Random(seed)
    for g in groups.values():
        rng.shuffle(g)
    keys = sorted(groups, key=lambda k: len(groups[k]))
    out: list[Record] = []
    budget = max_rows
    for i, k in enumerate(keys):
        share = budget // (len(keys) - i)
        take = groups[k][:share]
        out += take
        budget -= len(take)
    return out


def probe_targets(rows: Sequence[Record]) -> dict[str, list[str]]:
    """Probe name → class per row: label, style, source and ``concept.<name>`` (present / absent)."""
    from phishlens.explain.concepts import concept_labels

    texts = [r.text for r in rows]
    targets: dict[str, list[str]] = {
        "label": [r.label for r in rows],
        "style": [r.style for r in rows],
        "source": [r.source for r in rows],
    }
    for name, ys in concept_labels(texts).items():
        targets[f"concept.{name}"] = ["present" if v else "absent" for v in ys]
    return targets


def build_probes(ctx: ArtifactContext) -> dict[str, str]:
    from phishlens.explain.hidden import collect_hidden
    from phishlens.explain.probes import train_probes

    rows = cap_rows(ctx.validation, MAX_ROWS, ctx.seed)
    if not rows:
        raise ValueError(f"{ctx.manifest.name}: no validation rows to train probes on")
    tok = ctx.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    prompts = [ctx.encoder.encode(r.text).ids for r in rows]
    t0 = time.monotonic()
    hidden = ctx.cache.get("hidden_states")  # another builder of this run may have computed them
    if hidden is None or ctx.cache.get("hidden_rows") != [r.uid for r in rows]:
        import sys

        from tqdm import tqdm

        with tqdm(
            total=len(prompts),
            desc=f"{ctx.manifest.name}: probe hidden states",
            unit="text",
            file=sys.stderr,
            leave=False,
        ) as bar:
            hidden = collect_hidden(ctx.model, prompts, pad, progress=bar)
        ctx.cache["hidden_states"], ctx.cache["hidden_rows"] = hidden, [r.uid for r in rows]
    logger.info(
        "%s: hidden states of %d validation rows (%.0fs)", ctx.manifest.name, len(rows), time.monotonic() - t0
    )
    probes = train_probes(hidden, probe_targets(rows), pooling="last", seed=ctx.seed)
    logger.info("%s: %d probes fitted (%.0fs)", ctx.manifest.name, len(probes.probes), time.monotonic() - t0)
    for name, why in probes.skipped.items():
        logger.info("%s: probe %s skipped: %s", ctx.manifest.name, name, why)
    return probes.save(ctx.bundle_dir)
