"""Bundle artefacts computed after fine-tuning: the drift reference profile and the trained probes.

Both are functions of (adapter, validation rows), so they are built in two places with one code path:
at the end of `phishlens train` (the model is still in memory) and by `phishlens augment BUNDLE` for a
bundle trained before an artefact existed (the validation rows are rebuilt from the manifest's mix and
seed, and checked against its data fingerprint, so no other rows can slip in).

A builder is a function ``build(ctx) -> dict[role, file name]`` (training.artifacts.context) that writes its
files into ``ctx.bundle_dir`` (JSON or safetensors only) and returns the manifest ``extras`` entries it
owns. Builders are listed explicitly in `BUILDERS` (no plug-in discovery, no import that may fail quietly).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from phishlens.training.artifacts.context import ArtifactContext, Builder
from phishlens.training.artifacts.probes import build_probes
from phishlens.training.artifacts.reference import build_reference
from phishlens.training.contract import bundle as B
from phishlens.training.data.augment import AugmentOptions
from phishlens.training.data.mixes import build_mix, load_mix
from phishlens.training.data.records import Record, fingerprint
from phishlens.training.data.splits import load_splits
from phishlens.training.model.loading import load_adapter_model

logger = logging.getLogger(__name__)


# The builders, by artefact group: listed here, imported eagerly, so a broken builder module fails the
# import (and the training run) instead of shipping bundles without its artefact.
BUILDERS: dict[str, Builder] = {"reference": build_reference, "probes": build_probes}


def build_artifacts(ctx: ArtifactContext, groups: Sequence[str] | None = None) -> B.Manifest:
    """Run the builders (all by default), record their files in the manifest and rewrite it atomically."""
    builders = BUILDERS
    wanted = list(builders) if groups is None else list(groups)
    unknown = [g for g in wanted if g not in builders]
    if unknown:
        raise ValueError(f"unknown artefact group(s) {unknown}; known: {sorted(builders)}")
    built: dict[str, str] = {}
    for g in wanted:
        logger.info("building %s for %s", g, ctx.manifest.name)
        built.update(builders[g](ctx))
    # Merge into the manifest as it is on disk now, so an augment of another group that ran meanwhile keeps
    # its entries (the builders' files are already in place).
    current = B.read_manifest(ctx.bundle_dir)
    extras = {**current.extras, **built}
    for role, fname in extras.items():
        if not (ctx.bundle_dir / fname).is_file():
            raise RuntimeError(f"artefact {role} claims {fname}, which was not written")
    ctx.manifest = current.model_copy(update={"extras": extras})
    B.write_manifest(ctx.bundle_dir, ctx.manifest)
    return ctx.manifest


def validation_rows(manifest: B.Manifest, data_root: Path | None = None) -> list[Record]:
    """Rebuild a bundle's validation rows from its mix and seed; refuse if the data fingerprint differs."""
    return mix_rows(manifest, data_root)[1]


def mix_rows(manifest: B.Manifest, data_root: Path | None = None) -> tuple[list[Record], list[Record]]:
    """(train, validation) rows of a bundle's mix, rebuilt from its seed; refuse if the fingerprint
    differs. The training rows are returned as drawn, before the recipe's augmentation (the fingerprint covers
    the augmented rows the fit read): the reference profile describes text as it is served."""
    config = manifest.metrics.get("train", {}).get("config", {})
    seed = int(config.get("seed", 13))
    splits = load_splits(data_root, seed=seed)
    mix = build_mix(load_mix(manifest.training_data.mix), splits)
    # bundles trained before augmentation existed record no [augment] table: theirs was off
    train = AugmentOptions.model_validate(config.get("augment", {})).apply(mix.train, seed)
    fp = fingerprint(train + list(mix.validation))
    if fp != manifest.training_data.fingerprint:
        raise ValueError(
            f"{manifest.name}: the rebuilt mix {manifest.training_data.mix!r} has fingerprint "
            f"{fp[:12]}…, the bundle was trained on {manifest.training_data.fingerprint[:12]}…; "
            "the data or the split code changed"
        )
    return list(mix.train), list(mix.validation)


def augment_bundle(
    path: Path,
    groups: Sequence[str] | None = None,
    data_root: Path | None = None,
    validation: list[Record] | None = None,
) -> B.Bundle:
    """Add (or rebuild) artefacts in an existing bundle. The files go in place; the content hash changes."""
    bundle = B.load_bundle(path)
    train: list[Record] = []
    if validation is None:
        train, rows = mix_rows(bundle.manifest, data_root)
    else:
        rows = validation
    am = load_adapter_model(bundle)
    seed = int(bundle.manifest.metrics.get("train", {}).get("config", {}).get("seed", 13))
    ctx = ArtifactContext(
        Path(path), bundle.manifest, rows, am.model, am.tokenizer, am.encoder(bundle), seed=seed, train=train
    )
    build_artifacts(ctx, groups)
    return B.load_bundle(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
