"""`phishlens soup BUNDLE... --out DIR`: one bundle whose adapter is the mean of several fits of one recipe.

The fits must share everything a verdict depends on except their weights (base, prompt, pipeline, labels,
training rows, adapted layers and modules, threshold rule); the weights are averaged exactly
(`training/model/soup.py`). The soup is then calibrated from scratch on the shared validation rows
(temperature, threshold, uncertain band, as `phishlens train` does), its in-distribution metrics and golden
rows are re-measured and its drift reference and probes are rebuilt, so it is a bundle like any trained one.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from phishlens.training.contract import bundle as B
from phishlens.training.data.records import Record

logger = logging.getLogger(__name__)

# what every fit must share for the mean of their weights to be one model of one recipe
_SHARED = ("base_model", "prompt", "pipeline", "labels", "training_data")


def _check_fits(bundles: Sequence[B.Bundle]) -> None:
    first = bundles[0].manifest
    for b in bundles[1:]:
        m = b.manifest
        for field in _SHARED:
            if getattr(m, field) != getattr(first, field):
                raise ValueError(f"{b.name}: its {field} differs from {first.name}'s: not fits of one recipe")
        if (m.lora.target_modules, m.lora.layers) != (first.lora.target_modules, first.lora.layers):
            raise ValueError(f"{b.name}: adapts other layers or modules than {first.name}")
        if m.calibration.max_fpr != first.calibration.max_fpr:
            raise ValueError(
                f"{b.name}: threshold rule max_fpr {m.calibration.max_fpr} differs from {first.name}'s "
                f"{first.calibration.max_fpr}"
            )
    for b in bundles:
        cfg = json.loads((b.path / B.ADAPTER_CONFIG).read_text())
        if cfg.get("use_rslora") or cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
            raise ValueError(f"{b.name}: rsLoRA or per-module ranks are not supported in a soup")


def soup_bundles(
    paths: Sequence[Path],
    out_dir: Path,
    name: str,
    command: Sequence[str],
    data_root: Path | None = None,
    artifacts: bool = True,
    *,
    validation: list[Record] | None = None,
    eval_sets: Mapping[str, list[Record]] | None = None,
    seen_sources: Sequence[str] | None = None,
) -> B.Bundle:
    """Average the adapters at `paths` into a new bundle at `out_dir` (replaced when done);
    `validation`/`eval_sets` override the corpora (tests)."""
    from safetensors.torch import load_file, save_file

    from phishlens.training.artifacts.build import augment_bundle
    from phishlens.training.commands.calibrate import score_calibration
    from phishlens.training.commands.train import pick_golden
    from phishlens.training.model.soup import soup_lora

    bundles = [B.load_bundle(p) for p in paths]
    if len(bundles) < 2:
        raise ValueError("a soup needs at least two bundles")
    _check_fits(bundles)
    first = bundles[0].manifest
    state = soup_lora(
        [
            (load_file(str(b.path / B.ADAPTER_WEIGHTS)), b.manifest.lora.alpha / b.manifest.lora.r)
            for b in bundles
        ]
    )
    rank = sum(b.manifest.lora.r for b in bundles)

    tmp = out_dir.parent / f".{out_dir.name}.soup-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file(state, str(tmp / B.ADAPTER_WEIGHTS), metadata={"format": "pt"})
    cfg = json.loads((bundles[0].path / B.ADAPTER_CONFIG).read_text())
    cfg.update(r=rank, lora_alpha=float(rank))  # scaling 1: the fits' scalings are folded into B
    (tmp / B.ADAPTER_CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    members = [
        {
            "name": b.name,
            "sha256": b.sha256,
            "fit_seed": b.manifest.metrics.get("train", {}).get("config", {}).get("fit", {}).get("seed"),
            "command": b.manifest.command,
        }
        for b in bundles
    ]
    manifest = first.model_copy(
        update={
            "name": name,
            "lora": first.lora.model_copy(update={"r": rank, "alpha": float(rank)}),
            "metrics": {"train": first.metrics.get("train", {}), "soup": {"of": members}},
            "golden": [],
            "extras": {},
            "command": list(command),
            "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        }
    )
    B.write_manifest(tmp, manifest)
    cal, report, val, pv = score_calibration(
        B.load_bundle(tmp),
        first.calibration.max_fpr,
        None,  # the soup's margins are not any fit's: its temperature is fitted like a trained bundle's
        data_root,
        validation=validation,
        eval_sets=eval_sets,
        seen_sources=seen_sources,
    )
    metrics = {**(report or {}), **manifest.metrics}
    golden = pick_golden(val, pv, cal.threshold)
    B.write_manifest(
        tmp, manifest.model_copy(update={"calibration": cal, "metrics": metrics, "golden": golden})
    )
    if artifacts:
        augment_bundle(tmp, None, data_root=data_root, validation=validation)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    logger.info("wrote soup %s of %s (rank %d)", out_dir, ", ".join(b.name for b in bundles), rank)
    return B.load_bundle(out_dir)
