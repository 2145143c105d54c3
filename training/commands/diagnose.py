"""`phishlens diagnose`: load adapter bundles and a per-source test sample, run `explain.diagnose`,
write the report.

All adapters share one transformers copy of their base (peft multi-adapter, switched per model),
the same weights and prompt encoding as serving. The served score and the per-layer hidden states
come from one forward per text (the logit lens's last layer is the served probability).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.training.contract.bundle import load_bundle
from phishlens.training.contract.prompt import PromptEncoder
from phishlens.training.model.loading import CachedScorer, load_adapter_model

logger = logging.getLogger(__name__)


@dataclass
class _Frozen:
    """One prompt's encoder and the frozen-layer states of the texts it has wrapped (keyed by text)."""

    enc: PromptEncoder
    seq: dict[str, Any]  # block split-1's full output, to resume the forward from
    pooled: dict[str, tuple[np.ndarray, np.ndarray]]  # (last, mean) of the blocks below the split


def _sample(data_root: Path | None, per_label: int, seed: int) -> list[Any]:
    from phishlens.training.data.splits import load_splits
    from phishlens.training.evaluation.report import eval_sets

    sets = eval_sets(load_splits(data_root, seed=13), per_label=per_label, seed=seed)
    return [r for rows in sets.values() for r in rows]


def _matrix_png(matrix: dict[str, Any], names: Sequence[str], path: Path) -> Path | None:
    """Re-draw the committed cross-domain matrix (rows of the diagnosed adapters and their TF-IDF peers)."""
    from phishlens.training.evaluation.matrix import CrossDomainMatrix
    from phishlens.training.evaluation.report import EvalReport

    m = CrossDomainMatrix(metric=matrix.get("metric", "f1"))
    if not any(row["name"] in names for row in matrix.get("rows", [])):
        return None
    for row in matrix.get("rows", []):
        if row["name"] in names or row.get("kind") == "tfidf":  # the TF-IDF peers: a non-LLM reference
            rep = EvalReport.from_dict(row["metrics"], row["seen_sources"], row["threshold"])
            m.add(row["name"], rep, architecture=row["architecture"], kind=row.get("kind", "lora"))
    if not m.rows:
        return None
    return m.to_png(path, title="Cross-domain F1 (docs/eval/matrix.json)")


def run_diagnosis(
    adapters: Sequence[Path],
    out: Path,
    *,
    data_root: Path | None = None,
    per_label: int = 10,
    shap_per_style: int = 2,
    shap_evals: int = 64,
    matrix_path: Path | None = None,
    seed: int = 13,
    command: str = "",
    notes: Path | None = None,
    progress: bool = True,
) -> Path:
    """Diagnose `adapters` on a per-source sample; ``progress``: bars on stderr for hidden-state passes."""
    import sys

    import torch
    from tqdm import tqdm

    from phishlens.explain.diagnose import DiagnosedModel, diagnose, write_report
    from phishlens.explain.hidden import HiddenStates, collect_hidden, layer_name
    from phishlens.explain.logit_lens import LogitLens
    from phishlens.explain.probes import ProbeError, ProbeSet

    t0 = time.monotonic()
    bundles = [load_bundle(Path(p)) for p in adapters]
    if len({b.manifest.base_model.sha256 for b in bundles}) != 1:
        raise ValueError("diagnose adapters of one base model at a time")
    am = None
    for b in bundles:
        am = load_adapter_model(b, into=am)
    assert am is not None
    tok, peft, pad = am.tokenizer, am.model, am.pad_id
    rows = _sample(data_root, per_label, seed)
    logger.info("diagnosis sample: %d rows", len(rows))

    # LoRA touches only blocks >= split in every bundle: blocks below are the frozen base, computed once
    # per (prompt, text) and shared by the adapters with that prompt (pooled states for the probes / lens,
    # block split-1's full output to resume the forward from).
    split = min(min(b.manifest.lora.layers or [0]) for b in bundles)
    frozen: dict[tuple[str, int, float], _Frozen] = {}

    def lower(texts: list[str], fz: _Frozen) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in fz.pooled]
        if not todo or split == 0:
            return
        with tqdm(
            total=len(todo),
            desc=f"base layers 0-{split - 1}",
            unit="text",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar:
            h = collect_hidden(
                peft,
                [fz.enc.encode(t).ids for t in todo],
                pad,
                keep_sequence_of=split - 1,
                end=split,
                progress=bar,
            )
        for i, t in enumerate(todo):
            fz.pooled[t] = (h.last[i], h.mean[i])
            fz.seq[t] = h.sequences[i]

    models = []
    for b in bundles:
        m = b.manifest
        spec = (m.prompt.template, m.prompt.max_text_tokens, m.prompt.head_fraction)
        if spec not in frozen:
            frozen[spec] = _Frozen(PromptEncoder(tok, *spec), {}, {})
        fz = frozen[spec]
        lens = LogitLens.of(peft, m.label_token_ids)
        temp = m.calibration.temperature

        def activate(name: str = b.name) -> None:
            peft.set_adapter(name)

        def hidden(texts: list[str], activate: Any = activate, fz: _Frozen = fz) -> Any:
            activate()
            if split == 0:
                return collect_hidden(peft, [fz.enc.encode(t).ids for t in texts], pad)
            lower(texts, fz)
            with tqdm(
                total=len(texts),
                desc=f"{peft.active_adapter}: top layers",
                unit="text",
                leave=False,
                disable=not progress or len(texts) < 32,
                file=sys.stderr,
            ) as bar:
                top = collect_hidden(
                    peft,
                    [fz.enc.encode(t).ids for t in texts],
                    pad,
                    start=split,
                    start_states=[fz.seq[t] for t in texts],
                    progress=bar,
                )
            last = np.concatenate([np.stack([fz.pooled[t][0] for t in texts]), top.last], axis=1)
            mean = np.concatenate([np.stack([fz.pooled[t][1] for t in texts]), top.mean], axis=1)
            return HiddenStates([layer_name(i) for i in range(last.shape[1])], last, mean)

        scorer = CachedScorer(peft, fz.enc, split, m.label_token_ids, pad, temperature=temp, cache=fz.seq)

        def score(texts: list[str], activate: Any = activate, scorer: Any = scorer) -> np.ndarray:
            activate()
            return scorer(texts)

        probes = None
        if "probes" in m.extras:
            try:
                probes = ProbeSet.load(
                    b.path, m.extras["probes"], m.extras.get("probes_index", "probes.json")
                )
            except ProbeError as e:
                logger.warning("%s: %s", b.name, e)
        models.append(
            DiagnosedModel(
                b.name,
                list(m.training_data.sources),
                m.calibration.threshold,
                hidden,
                lambda s, lens=lens, temp=temp: lens.probabilities(s, temp),
                score,
                tok,
                probes,
                list(m.lora.layers or []),
            )
        )
    matrix = None
    if matrix_path is not None and Path(matrix_path).is_file():
        matrix = json.loads(Path(matrix_path).read_text())
    with torch.inference_mode():
        d = diagnose(
            models,
            rows,
            matrix,
            shap_per_style=shap_per_style,
            shap_evals=shap_evals,
            seed=seed,
            settings={
                "per_label": per_label,
                "command": command,
                "host": f"{os.cpu_count()} CPU cores ({platform.machine()}), "
                f"torch {torch.get_num_threads()} threads",
            },
        )
    out.mkdir(parents=True, exist_ok=True)
    extra = {}
    if matrix is not None:
        png = _matrix_png(matrix, [b.name for b in bundles], out / "matrix.png")
        if png is not None:
            extra["matrix"] = png.name
    d.settings["seconds"] = round(time.monotonic() - t0)
    intro = Path(notes).read_text() if notes is not None else ""
    return write_report(d, out, intro=intro, extra_figures=extra)
