"""`phishlens train`: mix → LoRA fine-tune → calibration → evaluation → adapter bundle."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch
from pydantic import BaseModel, ConfigDict, Field

from phishlens.training.artifacts import ArtifactContext, build_artifacts
from phishlens.training.contract import bundle as B
from phishlens.training.contract.base_models import LORA_TARGETS, resolve_base
from phishlens.training.contract.pipeline import PIPELINE
from phishlens.training.contract.prompt import (
    DEFAULT_LABEL_WORDS,
    DEFAULT_TEMPLATE,
    PromptEncoder,
    label_token_ids,
)
from phishlens.training.data.augment import AugmentOptions
from phishlens.training.data.config import REPO_ROOT
from phishlens.training.data.mixes import build_mix, load_mix
from phishlens.training.data.records import Record, fingerprint
from phishlens.training.data.splits import load_splits
from phishlens.training.evaluation.report import eval_sets as make_eval_sets
from phishlens.training.evaluation.report import evaluate_scorer
from phishlens.training.model.calibration import apply_temperature, fit_calibration
from phishlens.training.model.distributed import Strategy, gather_full_trainable
from phishlens.training.model.distributed import from_env as join_process_group
from phishlens.training.model.finetune import FitConfig, fit
from phishlens.training.model.layers import n_layers
from phishlens.training.model.loading import CachedScorer, load_model, load_tokenizer
from phishlens.training.model.sharded import load_sharded
from phishlens.training.model.state_cache import StateCache, disk_root, namespace

logger = logging.getLogger(__name__)
REPO = REPO_ROOT  # configs/train/ and adapters/ live here


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: list[str] | None = None  # None: the architecture preset
    top_layers: int | None = 4  # LoRA (and training compute) only in the top N layers; None = all


class TrainConfig(BaseModel):
    """One training run; lives in ``configs/train/<name>.toml``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    base: str = "smollm2"
    mix: str = "generalist"
    template: str = DEFAULT_TEMPLATE
    label_words: tuple[str, str] = DEFAULT_LABEL_WORDS
    max_text_tokens: int = 160
    lora: LoraOptions = Field(default_factory=LoraOptions)
    augment: AugmentOptions = Field(default_factory=AugmentOptions)
    fit: dict[str, Any] = Field(default_factory=dict)
    eval_per_label: int = 100
    max_fpr: float | None = Field(default=None, ge=0.0, lt=1.0)
    """Threshold rule: the F1-best cut whose validation false-positive rate is at most this (none: the
    F1-best cut, which on the balanced validation mix flags most unfamiliar legitimate text; issue 13)."""
    seed: int = 13

    @classmethod
    def load(cls, name_or_path: str) -> TrainConfig:
        p = Path(name_or_path)
        if not p.suffix:
            p = REPO / "configs" / "train" / f"{name_or_path}.toml"
        if not p.is_file():
            raise FileNotFoundError(f"training config {name_or_path!r} not found ({p})")
        return cls.model_validate(tomllib.loads(p.read_text()))


# Lower-layer states are a pure function of (base weights, prompt, split, text): runs in one process
# (several configs in one `phishlens train`) share them, so a text's frozen layers run once.
_STATE_CACHES: dict[tuple, StateCache] = {}


def lora_model(model: Any, arch: str, opts: LoraOptions) -> tuple[Any, int, list[str]]:
    from peft import LoraConfig, get_peft_model

    n = n_layers(model)
    top = n if opts.top_layers is None else min(opts.top_layers, n)
    split = n - top
    targets = opts.targets or LORA_TARGETS.get(arch) or LORA_TARGETS["llama"]
    cfg = LoraConfig(
        r=opts.r,
        lora_alpha=opts.alpha,
        lora_dropout=opts.dropout,
        target_modules=targets,
        layers_to_transform=list(range(split, n)),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg), split, targets


def pick_golden(
    records: Sequence[Record], p: np.ndarray, threshold: float, per_label: int = 2
) -> list[B.GoldenExample]:
    """Confidently right validation rows (short ones), for the server's readiness self-test."""
    out: list[B.GoldenExample] = []
    for label, want in (("phishing", 1), ("legitimate", 0)):
        cands = [
            (len(r.text), i)
            for i, r in enumerate(records)
            if r.y == want and len(r.text) < 400 and ((p[i] > 0.9) if want else (p[i] < 0.1))
        ]
        for _, i in sorted(cands)[:per_label]:
            out.append(B.GoldenExample(text=records[i].text, label=label))  # type: ignore[arg-type]
    return out


def train_bundle(
    cfg: TrainConfig,
    out_dir: Path,
    command: Sequence[str],
    data_root: Path | None = None,
    records: tuple[list[Record], list[Record]] | None = None,
    seen_sources: Sequence[str] | None = None,
    eval_sets: dict[str, list[Record]] | None = None,
    resume: bool = True,
    progress: bool = True,
    artifacts: Sequence[str] | None = None,
    strategy: Strategy = "ddp",
) -> B.Bundle:
    """Train one adapter and write its bundle to ``out_dir``.

    ``records`` (train, validation) and ``eval_sets`` override the corpora (tests use planted data).
    ``artifacts``: artefact groups to build from the validation rows (`training.artifacts`; None = all,
    () = none). ``strategy``: how ranks under torchrun split the work, "ddp" or "fsdp" (sharded top layers;
    training/model/distributed.py); the adapter is the same either way.
    """
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    dist = join_process_group(strategy)  # torchrun: DDP/FSDP fit, rank 0 writes (model/distributed.py)
    progress = progress and dist.is_main
    if records is None:
        splits = load_splits(data_root, seed=cfg.seed)
        spec = load_mix(cfg.mix)
        mix = build_mix(spec, splits)
        train_rows, val_rows = mix.train, mix.validation
        seen_sources = list(spec.sources)
        if eval_sets is None:
            eval_sets = make_eval_sets(splits, per_label=cfg.eval_per_label, seed=cfg.seed)
    else:
        train_rows, val_rows = records
        seen_sources = list(seen_sources or sorted({r.source for r in train_rows}))
    # the fit reads the augmented rows; the artefacts' reference describes text as served (rows as drawn)
    drawn_rows, train_rows = list(train_rows), cfg.augment.apply(train_rows, cfg.seed)

    base = resolve_base(cfg.base)
    tok = load_tokenizer(base)
    label_ids = label_token_ids(tok, cfg.label_words)
    sharded = dist.enabled and dist.strategy == "fsdp"
    if sharded:  # no rank ever holds the whole base: each reads its shards (model/sharded.py)
        model, split, targets = load_sharded(
            base, lambda m: lora_model(m, base.architecture, cfg.lora), label_ids, dist
        )
    else:
        _, model = load_model(base)
        model, split, targets = lora_model(model, base.architecture, cfg.lora)
    encoder = PromptEncoder(tok, cfg.template, cfg.max_text_tokens)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    cache = _STATE_CACHES.setdefault(
        (base.sha256, cfg.template, cfg.max_text_tokens, split),
        StateCache(namespace(base.sha256, cfg.template, cfg.max_text_tokens, split), disk_root()),
    )
    ranks = dist if sharded else None  # sharded: every scoring pass is a collective of all ranks
    scorer = CachedScorer(model, encoder, split, label_ids, pad, cache=cache, sharded_over=ranks)

    t0 = time.monotonic()
    bar = tqdm(desc="lower layers", disable=not progress, file=sys.stderr, mininterval=5)
    # one pass fills the cache for the validation rows too (calibration and artefacts read them from it)
    states = scorer.states([r.text for r in train_rows] + [r.text for r in val_rows], progress=bar)
    bar.close()
    cache_s = time.monotonic() - t0
    train_states = states[: len(train_rows)]

    fit_cfg = FitConfig(**{"seed": cfg.seed, **cfg.fit})
    steps_bar = tqdm(desc="train", unit="step", disable=not progress, file=sys.stderr, mininterval=5)

    def on_step(step: int, loss: float, eps: float) -> None:
        steps_bar.update(1)
        steps_bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{eps:.1f}")

    ckpt = out_dir.parent / f".{out_dir.name}.ckpt"
    if not resume and ckpt.exists() and dist.is_main:
        shutil.rmtree(ckpt)
    dist.barrier()  # no rank resumes from a checkpoint rank 0 is deleting
    result = fit(
        model,
        train_states,
        [r.y for r in train_rows],
        split,
        label_ids,
        fit_cfg,
        ckpt_dir=ckpt,
        on_step=on_step,
        dist=dist,
    )
    steps_bar.close()
    if sharded:
        # the model is FSDP shards: every rank gathers the full LoRA weights (a collective; the bundle is
        # written from them) and all ranks calibrate, evaluate and build the artefacts through their shards
        # together, below
        lora = gather_full_trainable(model)
    elif not dist.is_main:  # every rank holds the same adapter; rank 0 calibrates, evaluates and writes it
        dist.barrier()
        return B.load_bundle(out_dir, expected_base_sha256=base.sha256)

    # Calibrate on validation rows: temperature, then threshold and uncertainty band on calibrated p.
    yv = np.array([r.y for r in val_rows])
    mv = scorer.margins([r.text for r in val_rows])
    calibration = fit_calibration(mv, yv, max_fpr=cfg.max_fpr)
    threshold = calibration.threshold
    scorer.temperature = calibration.temperature
    pv = apply_temperature(mv, calibration.temperature)

    metrics: dict[str, Any] = {}
    if eval_sets:
        report = evaluate_scorer(scorer, threshold, eval_sets, seen_sources)
        metrics = report.to_dict()
    metrics["train"] = {
        "steps": result.steps,
        "examples": result.examples,
        "seconds": round(result.seconds, 1),
        "examples_per_s": round(result.examples_per_s, 2),
        "cache_seconds": round(cache_s, 1),
        "final_loss": float(np.mean(result.losses[-20:])) if result.losses else None,
        "stopped_by": result.stopped_by,
        "config": cfg.model_dump(mode="json"),
    }
    # FSDP: every rank goes on with rank 0 (the artefact builders' passes run through the shards too), writing
    # its copy of the bundle to a scratch folder; only rank 0's is kept
    scratch = None if dist.is_main else tempfile.TemporaryDirectory(prefix="phishlens-rank-")
    tmp = out_dir.parent / f".{out_dir.name}.tmp" if scratch is None else Path(scratch.name) / "bundle"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp), **({"state_dict": lora} if sharded else {}))  # FSDP: the gathered LoRA
    for extra in tmp.iterdir():  # keep only the peft files (peft also writes a boilerplate README card)
        if extra.name not in (B.ADAPTER_CONFIG, B.ADAPTER_WEIGHTS):
            extra.unlink()
    _sort_target_modules(tmp / B.ADAPTER_CONFIG)
    manifest = B.Manifest(
        name=cfg.name,
        base_model=B.BaseModelRef(ref=cfg.base, sha256=base.sha256, architecture=base.architecture),
        prompt=B.PromptSpec(template=cfg.template, max_text_tokens=cfg.max_text_tokens),
        pipeline=B.PipelineRef(name=PIPELINE.name, version=PIPELINE.version),  # what built every record
        labels=[
            B.LabelSpec(name="phishing", word=cfg.label_words[0], token_id=label_ids[0]),
            B.LabelSpec(name="legitimate", word=cfg.label_words[1], token_id=label_ids[1]),
        ],
        calibration=calibration,
        lora=B.LoraSpec(
            r=cfg.lora.r,
            alpha=cfg.lora.alpha,
            dropout=cfg.lora.dropout,
            target_modules=targets,
            layers=list(range(split, n_layers(model))),
        ),
        training_data=B.TrainingData(
            mix=cfg.mix,
            sources={
                s: sum(r.source == s for r in train_rows) for s in sorted({r.source for r in train_rows})
            },
            rows={"train": len(train_rows), "validation": len(val_rows)},
            fingerprint=fingerprint(list(train_rows) + list(val_rows)),
        ),
        metrics=metrics,
        golden=pick_golden(val_rows, pv, threshold),
        command=list(command),
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    )
    B.write_manifest(tmp, manifest)
    if artifacts is None or len(artifacts):
        model.eval()
        build_artifacts(
            ArtifactContext(
                tmp, manifest, list(val_rows), model, tok, encoder, seed=cfg.seed, train=drawn_rows
            ),
            None if artifacts is None else list(artifacts),
        )
    if scratch is not None:  # FSDP, not rank 0: the same bundle is rank 0's to write
        scratch.cleanup()
        dist.barrier()
        return B.load_bundle(out_dir, expected_base_sha256=base.sha256)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    shutil.rmtree(ckpt, ignore_errors=True)
    logger.info("wrote bundle %s", out_dir)
    dist.barrier()
    return B.load_bundle(out_dir, expected_base_sha256=base.sha256)


def summary(b: B.Bundle) -> str:
    return json.dumps({"name": b.name, "sha256": b.sha256, "metrics": b.manifest.metrics}, indent=2)


def _sort_target_modules(path: Path) -> None:
    """peft writes `target_modules` from a set, in the process's hash order; sorted, one recipe writes one
    adapter_config.json in every process."""
    cfg = json.loads(path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
