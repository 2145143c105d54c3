"""Bundle artefacts computed after fine-tuning: the drift reference profile and the trained probes.

Both are functions of (adapter, validation rows), so they are built in two places with one code path:
at the end of `phishlens train` (the model is still in memory) and by `phishlens augment BUNDLE` for a
bundle trained before an artefact existed (the validation rows are rebuilt from the manifest's mix and
seed, and checked against its data fingerprint, so no other rows can slip in).

A builder is a function ``build(ctx) -> dict[role, file name]`` that writes its files into
``ctx.bundle_dir`` (JSON or safetensors only) and returns the manifest ``extras`` entries it owns.
Builders are listed explicitly in `BUILDERS` (no plug-in discovery).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import bundle as B
from .records import Record, fingerprint

logger = logging.getLogger(__name__)


@dataclass
class ArtifactContext:
    """What a builder may use. `model` is the peft model with this bundle's adapter active, in eval mode."""

    bundle_dir: Path
    manifest: B.Manifest
    validation: list[Record]  # the mix's validation rows (the rows calibration was fitted on)
    model: Any
    tokenizer: Any
    encoder: Any  # training.prompt.PromptEncoder for this bundle's prompt
    seed: int = 13
    train: list[Record] = field(default_factory=list)  # the mix's training rows (model-independent features)
    cache: dict[str, Any] = field(default_factory=dict)  # shared between builders of one run (e.g. scores)


Builder = Callable[[ArtifactContext], dict[str, str]]


def _builders() -> dict[str, Builder]:
    """role group → builder. Imported lazily: each pulls in its own heavy dependencies."""
    out: dict[str, Builder] = {}
    try:
        from .reference import build_reference
        out["reference"] = build_reference
    except ImportError as e:  # pragma: no cover - only while a builder module is absent
        logger.debug("reference builder unavailable: %s", e)
    try:
        from .probes import build_probes
        out["probes"] = build_probes
    except ImportError as e:  # pragma: no cover
        logger.debug("probe builder unavailable: %s", e)
    return out


def build_artifacts(ctx: ArtifactContext, groups: Sequence[str] | None = None) -> B.Manifest:
    """Run the builders (all by default), record their files in the manifest and rewrite it atomically."""
    builders = _builders()
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
    """(train, validation) rows of a bundle's mix, rebuilt from its seed; refuse if the fingerprint differs."""
    from .mixes import build_mix, load_mix
    from .splits import load_splits

    seed = int(manifest.metrics.get("train", {}).get("config", {}).get("seed", 13))
    splits = load_splits(data_root, seed=seed)
    mix = build_mix(load_mix(manifest.training_data.mix), splits)
    fp = fingerprint(list(mix.train) + list(mix.validation))
    if fp != manifest.training_data.fingerprint:
        raise ValueError(f"{manifest.name}: the rebuilt mix {manifest.training_data.mix!r} has fingerprint "
                         f"{fp[:12]}…, the bundle was trained on {manifest.training_data.fingerprint[:12]}…; "
                         "the data or the split code changed")
    return list(mix.train), list(mix.validation)


def load_bundle_model(bundle: B.Bundle) -> tuple[Any, Any, Any]:
    """(tokenizer, peft model with the adapter active in eval mode, prompt encoder) for a bundle, via HF."""
    from peft import PeftModel

    from .base_models import resolve_base
    from .prompt import PromptEncoder
    from .train import load_model

    m = bundle.manifest
    base = resolve_base(m.base_model.ref)
    if base.sha256 != m.base_model.sha256:
        raise B.BundleError(f"{bundle.name}: base weights {base.sha256[:12]}… differ from the ones it was "
                            f"trained on ({m.base_model.sha256[:12]}…)")
    tok, model = load_model(base)
    peft_model = PeftModel.from_pretrained(model, str(bundle.path)).eval()
    enc = PromptEncoder(tok, m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
    return tok, peft_model, enc


def augment_bundle(path: Path, groups: Sequence[str] | None = None, data_root: Path | None = None,
                   validation: list[Record] | None = None) -> B.Bundle:
    """Add (or rebuild) artefacts in an existing bundle. The files go in place; the content hash changes."""
    bundle = B.load_bundle(path)
    train: list[Record] = []
    if validation is None:
        train, rows = mix_rows(bundle.manifest, data_root)
    else:
        rows = validation
    tok, model, enc = load_bundle_model(bundle)
    seed = int(bundle.manifest.metrics.get("train", {}).get("config", {}).get("seed", 13))
    ctx = ArtifactContext(Path(path), bundle.manifest, rows, model, tok, enc, seed=seed, train=train)
    build_artifacts(ctx, groups)
    return B.load_bundle(path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
