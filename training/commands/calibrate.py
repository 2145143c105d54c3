"""`phishlens calibrate BUNDLE --max-fpr A`: re-choose an existing bundle's served threshold by another rule.

The threshold is a function of (adapter, validation rows, rule): this rebuilds the validation rows from the
manifest's mix and seed (checked against its data fingerprint, as `phishlens augment` does), scores them
with the bundle's own temperature, chooses the threshold and uncertain band exactly as `phishlens train`
does (`fit_calibration`), re-measures the in-distribution metrics at the new threshold and rewrites the
manifest atomically. The weights, temperature, reference and probes are untouched, so a retrain with the same
config and `max_fpr` gives the same calibration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.training.contract import bundle as B
from phishlens.training.data.records import Record

logger = logging.getLogger(__name__)


def score_calibration(
    bundle: B.Bundle,
    max_fpr: float | None,
    temperature: float | None,
    data_root: Path | None = None,
    *,
    validation: list[Record] | None = None,
    eval_sets: Mapping[str, list[Record]] | None = None,
    seen_sources: Sequence[str] | None = None,
) -> tuple[B.Calibration, dict[str, Any] | None, list[Record], np.ndarray]:
    """Calibrate `bundle` on its validation rows as `phishlens train` does (`fit_calibration`; `temperature`
    None fits it) and re-measure its in-distribution metrics at that threshold.

    Returns (calibration, the metrics report or None without eval sets, the validation rows, their calibrated
    P(phishing))."""
    from phishlens.training.artifacts.build import validation_rows
    from phishlens.training.commands.evaluate import adapter_scorers
    from phishlens.training.data.mixes import load_mix
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.report import eval_sets as make_eval_sets
    from phishlens.training.evaluation.report import evaluate_scorer
    from phishlens.training.model.calibration import apply_temperature, fit_calibration

    m = bundle.manifest
    train_cfg: dict[str, Any] = m.metrics.get("train", {}).get("config", {})
    if validation is None:
        validation = validation_rows(m, data_root)
    if eval_sets is None:
        seed = int(train_cfg.get("seed", 13))
        per_label = int(train_cfg.get("eval_per_label", 100))
        eval_sets = make_eval_sets(load_splits(data_root, seed=seed), per_label=per_label, seed=seed)
        seen_sources = list(load_mix(m.training_data.mix).sources)
    seen = list(seen_sources or m.training_data.sources)
    yv = np.array([r.y for r in validation])
    for _, scorer in adapter_scorers([bundle]):
        margins = scorer.margins([r.text for r in validation])
        cal = fit_calibration(margins, yv, max_fpr=max_fpr, temperature=temperature)
        scorer.temperature = cal.temperature
        report = evaluate_scorer(scorer, cal.threshold, eval_sets, seen) if eval_sets else None
    return (
        cal,
        None if report is None else report.to_dict(),
        validation,
        apply_temperature(margins, cal.temperature),
    )


def calibrate_bundle(
    path: Path,
    max_fpr: float | None,
    data_root: Path | None = None,
    *,
    validation: list[Record] | None = None,
    eval_sets: Mapping[str, list[Record]] | None = None,
    seen_sources: Sequence[str] | None = None,
    command: str = "",
) -> B.Bundle:
    """Recalibrate the bundle at `path` in place; `validation`/`eval_sets` override the corpora (tests)."""
    bundle = B.load_bundle(path)
    m = bundle.manifest
    train_cfg: dict[str, Any] = m.metrics.get("train", {}).get("config", {})
    cal, report, _, _ = score_calibration(
        bundle,
        max_fpr,
        m.calibration.temperature,  # probabilities stay as served; only the cut moves
        data_root,
        validation=validation,
        eval_sets=eval_sets,
        seen_sources=seen_sources,
    )
    metrics = dict(m.metrics)
    if report is not None:  # the in-distribution report is replaced; what else the manifest records stays
        metrics = {**metrics, **report}
    metrics["calibrated"] = {"max_fpr": max_fpr, "previous_threshold": m.calibration.threshold}
    if command:
        metrics["calibrated"]["command"] = command
    if train_cfg:  # the config that reproduces the bundle now names the rule too
        metrics.setdefault("train", {})["config"] = {**train_cfg, "max_fpr": max_fpr}
    B.write_manifest(Path(path), m.model_copy(update={"calibration": cal, "metrics": metrics}))
    logger.info(
        "%s: threshold %.4f -> %.4f (max_fpr %s)", m.name, m.calibration.threshold, cal.threshold, max_fpr
    )
    return B.load_bundle(path)
