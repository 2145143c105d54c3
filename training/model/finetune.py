"""LoRA fine-tuning with the label-token objective (DESIGN.md §4) on a CPU budget.

Loss: cross-entropy over the label-token logits at the answer position only (2 rows of the output
head, not the vocabulary). LoRA sits in the top ``top_layers`` layers; the frozen lower layers run
once per text (`layers.lower_states`) and every step trains the top only. Checkpoints (LoRA weights
+ AdamW moments as safetensors, step counter as JSON) make a run resumable.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from phishlens.training.model.distributed import (
    SINGLE,
    DistContext,
    TopHead,
    gather_full,
    no_sync,
    shard_like,
    wrap,
)
from phishlens.training.model.layers import top_label_logits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    lr: float = 1e-3
    batch_size: int = 16
    grad_accum: int = 1
    epochs: float = 2.0
    max_steps: int | None = None
    max_minutes: float | None = None  # wall-clock guard; makes a run machine-dependent, prefer steps
    stop_after_steps: int | None = None  # stop early without changing the LR schedule (reproduces a cut run)
    warmup_frac: float = 0.06
    weight_decay: float = 0.0
    seed: int = 13
    checkpoint_every: int = 50


@dataclass
class FitResult:
    steps: int
    examples: int
    seconds: float
    losses: list[float]
    stopped_by: str  # "epochs" | "max_steps" | "max_minutes" | "stop_after_steps"

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0


def _trainable(model: Any) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save_ckpt(
    path: Path, model: Any, opt: torch.optim.Optimizer, step: int, losses: list[float], write: bool = True
) -> None:
    """Full (unsharded) tensors, so a checkpoint resumes under any strategy and world size. Under FSDP every
    rank calls this (the gathers are collectives) and only ``write`` ranks write."""
    from safetensors.torch import save_file

    params = _trainable(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, p in params.items():
        tensors[f"param/{name}"] = gather_full(p.detach()).contiguous()
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                tensors[f"{k}/{name}"] = gather_full(st[k]).contiguous()
    if not write:
        return
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "ckpt.safetensors.tmp"))
    (path / "ckpt.safetensors.tmp").replace(path / "ckpt.safetensors")
    (path / "ckpt.json").write_text(json.dumps({"step": step, "losses": losses}))


def _load_ckpt(path: Path, model: Any, opt: torch.optim.Optimizer) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    meta = json.loads((path / "ckpt.json").read_text())
    tensors = load_file(str(path / "ckpt.safetensors"))
    params = _trainable(model)
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(shard_like(p, tensors[f"param/{name}"]))  # this rank's shard under FSDP
            if f"exp_avg/{name}" in tensors:
                opt.state[p] = {
                    "step": torch.tensor(float(meta["step"])),
                    "exp_avg": shard_like(p, tensors[f"exp_avg/{name}"].clone()),
                    "exp_avg_sq": shard_like(p, tensors[f"exp_avg_sq/{name}"].clone()),
                }
    return int(meta["step"]), list(meta["losses"])


def _batches(n: int, lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (sort inside shuffled pools of 32 batches: little padding)."""
    idx = list(range(n))
    rng.shuffle(idx)
    pool = batch_size * 32
    out: list[list[int]] = []
    for s in range(0, n, pool):
        chunk = sorted(idx[s : s + pool], key=lambda i: lengths[i])
        out.extend(chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def fit(
    model: Any,
    states: Sequence[torch.Tensor],
    y: Sequence[int],
    split: int,
    label_ids: Sequence[int],
    cfg: FitConfig,
    ckpt_dir: Path | None = None,
    on_step: Callable[[int, float, float], None] | None = None,
    dist: DistContext = SINGLE,
) -> FitResult:
    """Train the model's trainable (LoRA) parameters on cached lower-layer states.

    ``y[i]`` is 1 for phishing; ``label_ids`` = [phishing token, legitimate token]. Under torchrun
    (``dist.enabled``) every rank sees the same global batches and trains on its share of each through DDP
    or FSDP (training/model/distributed.py): the adapter is the single-process one for the same
    ``batch_size``.
    """
    torch.manual_seed(cfg.seed)
    if not _trainable(model):
        raise ValueError("model has no trainable parameters")
    # wrap before the optimiser: FSDP replaces the parameters with their shards (DDP keeps them)
    net = wrap(TopHead(model, split, label_ids), dist)
    params = list(_trainable(model).values())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lengths = [s.shape[0] for s in states]
    per_epoch = math.ceil(len(states) / cfg.batch_size)
    total_micro = math.ceil(per_epoch * cfg.epochs)
    total_steps = math.ceil(total_micro / cfg.grad_accum)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    warm = max(1, int(total_steps * cfg.warmup_frac))

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to 10 %
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    step, losses = 0, []
    if ckpt_dir is not None and (ckpt_dir / "ckpt.json").is_file():
        step, losses = _load_ckpt(ckpt_dir, model, opt)
        logger.info("resumed from step %d", step)
    # Target: index of the true label among label_ids (0 = phishing).
    target = torch.tensor([0 if v == 1 else 1 for v in y], dtype=torch.long)
    model.train()
    t0 = time.monotonic()
    seen = 0
    stopped = "epochs"
    micro = 0
    # Rebuild the epoch stream deterministically so a resumed run continues with the same batches.
    consumed = step * cfg.grad_accum
    epoch, skip = divmod(consumed, per_epoch)
    batches: list[list[int]] = []
    while step < total_steps:
        if not batches:
            batches = _batches(len(states), lengths, cfg.batch_size, random.Random(cfg.seed + epoch))[skip:]
            epoch, skip = epoch + 1, 0
        b = batches.pop(0)
        mine = dist.shard(b)
        with no_sync(net, skip=(micro + 1) % cfg.grad_accum != 0):
            if mine:
                # this rank's sum over the global batch size; DDP averages over ranks, hence × world:
                # the synchronised gradient is that of the mean loss over the whole global batch
                logits = net([states[i] for i in mine])
                loss = (
                    torch.nn.functional.cross_entropy(logits, target[mine], reduction="sum")
                    * (dist.world / len(b))
                    / cfg.grad_accum
                )
            else:  # a rank with no share of a short batch still joins the all-reduce, adding zero
                loss = net([states[b[0]]]).sum() * 0.0
            loss.backward()
        micro += 1
        seen += len(b)
        if micro % cfg.grad_accum:
            continue
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        losses.append(dist.all_mean(float(loss.item() * cfg.grad_accum)))  # the global batch's mean loss
        elapsed = time.monotonic() - t0
        if on_step is not None:
            on_step(step, losses[-1], seen / max(elapsed, 1e-9))
        if (
            ckpt_dir is not None
            and step % cfg.checkpoint_every == 0
            and (dist.is_main or dist.strategy == "fsdp")
        ):
            _save_ckpt(ckpt_dir, model, opt, step, losses, write=dist.is_main)  # FSDP: all ranks gather
        if cfg.max_minutes is not None and dist.any(
            elapsed > cfg.max_minutes * 60
        ):  # all ranks stop together
            stopped = "max_minutes"
            break
        if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps:
            stopped = "stop_after_steps"
            break
    else:
        stopped = "max_steps" if cfg.max_steps is not None and step >= cfg.max_steps else "epochs"
    model.eval()
    return FitResult(step, seen, time.monotonic() - t0, losses, stopped)


@torch.inference_mode()
def margins(
    model: Any, states: Sequence[torch.Tensor], split: int, label_ids: Sequence[int], max_tokens: int = 8192
) -> torch.Tensor:
    """logit(phishing) − logit(legitimate) for each cached state: [n]."""
    from phishlens.training.model.layers import token_batches

    out = torch.empty(len(states))
    for chunk in token_batches([s.shape[0] for s in states], max_tokens):
        logits = top_label_logits(model, [states[i] for i in chunk], split, label_ids)
        out[chunk] = (logits[:, 0] - logits[:, 1]).float()
    return out
