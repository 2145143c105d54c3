"""Data-parallel training under `torchrun` (DESIGN.md §6a: torch.distributed, not a home-made launcher).

    torchrun --nproc_per_node 4 $(which phishlens) train --config specialist-sms      # 4 processes, 1 node
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint host:29400 $(which phishlens) train ...

`torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; `phishlens train` then joins the process group
(gloo: the training code runs on CPUs — placing the model and its batches on `cuda:LOCAL_RANK` with NCCL is
the step a GPU cluster needs, docs/deploy.md §4) and `finetune.fit` trains with PyTorch DDP or FSDP. Every
rank builds the same seeded global batch and takes its strided share of it; the per-rank loss is scaled so
the ranks' gradient average is the gradient of the mean loss over the *global* batch, so N processes with
batch_size B give the adapter one process with batch_size B gives (up to float summation order; exactly the
same batches and LR schedule). LoRA dropout draws its masks per rank, so with dropout > 0 the two runs agree
in distribution only.

Only rank 0 writes checkpoints, logs progress and writes the bundle; the others wait at a barrier.

Strategies (`phishlens train --strategy ddp|fsdp`, default ddp; the adapter does not depend on the choice):

- **ddp** replicates the whole base on each rank: right while it fits one device (SmolLM2, Gemma-3-270M, an
  8-9 B base in bf16 on one 24 GB+ GPU).
- **fsdp** (FSDP2: `torch.distributed.fsdp.fully_shard` over a gloo CPU mesh), for a base that does not fit
  one device or one host: the base is loaded straight into shards (`sharded.load_sharded`: built on the meta
  device, LoRA added, every decoder layer and the input embedding its own shard group, then each rank reads
  only its rows of each tensor from the safetensors files), so no rank ever holds the whole base: a rank
  holds its 1/N of the base, plus one layer (or the embedding) while it is gathered. The frozen lower-layer
  pass (`layers.lower_states`, the frozen-layer cache) runs through the shards with every rank taking part
  (the ranks agree on the texts first, `DistContext.union`); training gathers each trained layer for its
  forward and backward and reduce-scatters the gradients, and the optimiser holds only the shards of the
  LoRA weights. Replicated: the final norm (d values) and `sharded.LabelHead`, the two label rows of the
  output head, the only ones training and scoring read. Checkpoints hold gathered full tensors (re-sharded on
  resume); after training every rank gathers the full LoRA weights (`gather_full_trainable`), and all ranks
  calibrate, evaluate and build the bundle's artefacts through their shards together
  (`CachedScorer(sharded_over=...)`; the others write their copy of the bundle to a scratch folder), rank 0
  writing the adapter from the gathered weights: no step needs an unsharded copy. Not done: shards on
  `cuda:LOCAL_RANK` with NCCL; docs/deploy.md §4.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

Strategy = Literal["ddp", "fsdp"]
STRATEGIES: tuple[str, ...] = ("ddp", "fsdp")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    strategy: Strategy = "ddp"

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: Sequence[int]) -> list[int]:
        """This rank's strided share of a global batch (ranks beyond the batch size get nothing)."""
        return list(batch[self.rank :: self.world])

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_mean(self, value: float) -> float:
        """The mean of a per-rank scalar over all ranks (for logged losses identical on every rank)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def union(self, items: Sequence[str]) -> list[str]:
        """The items of every rank, in order, on every rank (a collective lower-layer pass needs one list)."""
        if not self.enabled:
            return list(items)
        every: list[list[str] | None] = [None] * self.world
        torch.distributed.all_gather_object(every, list(items))
        return list(dict.fromkeys(x for part in every for x in part or ()))

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop decisions must agree or the ranks deadlock)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


SINGLE = DistContext()


def from_env(strategy: Strategy = "ddp") -> DistContext:
    """Join the process group `torchrun` describes; a plain process (no WORLD_SIZE > 1) stays single."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown training strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    dist = torch.distributed
    if not dist.is_initialized():
        # gloo: the model and its batches live on the CPU (train.load_model); rank 0 evaluates and writes the
        # bundle while the others wait at a barrier, hence hours of timeout
        dist.init_process_group(backend="gloo", timeout=datetime.timedelta(hours=12))
        logger.info("joined gloo process group: rank %d of %d", dist.get_rank(), dist.get_world_size())
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return DistContext(dist.get_rank(), dist.get_world_size(), local, strategy)


class TopHead(torch.nn.Module):
    """The trained part of the model as one module: cached lower-layer states → label logits.

    DDP and FSDP synchronise through a module's `forward`; `finetune.fit` calls the top layers directly,
    so this wrapper gives them one.
    """

    def __init__(self, model: Any, split: int, label_ids: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.split = split
        self.label_ids = list(label_ids)

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        from phishlens.training.model.layers import top_label_logits

        return top_label_logits(self.model, states, self.split, self.label_ids)


def wrap(head: TopHead, ctx: DistContext) -> torch.nn.Module:
    """`head` ready for data-parallel training on this rank (unchanged when single, or when its model was
    loaded straight into FSDP shards: the decoder is then the FSDP root, `sharded.load_sharded`)."""
    if not ctx.enabled:
        return head
    if ctx.strategy == "fsdp":
        if fsdp_root(head) is None:
            raise ValueError("--strategy fsdp trains a model loaded with sharded.load_sharded")
        return head
    from torch.nn.parallel import DistributedDataParallel as DDP

    # The frozen base is loaded from the same files on every rank: skip broadcasting it (only LoRA syncs).
    frozen = [n for n, p in head.named_parameters() if not p.requires_grad]
    frozen += [n for n, _ in head.named_buffers()]
    DDP._set_params_and_buffers_to_ignore_for_model(head, frozen)
    return DDP(head, broadcast_buffers=False)  # CPU module: no device_ids


def fsdp_root(module: torch.nn.Module) -> Any:
    """The FSDP2 root behind a `TopHead` (its model's decoder) or the module itself; None when not sharded."""
    from torch.distributed.fsdp import FSDPModule

    from phishlens.training.model.layers import decoder

    root = decoder(module.model) if isinstance(module, TopHead) else module
    return root if isinstance(root, FSDPModule) else None


def gather_full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor behind an FSDP shard (a collective: every rank must call it); a plain tensor as is."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def shard_like(like: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
    """This rank's shard of ``full`` laid out as ``like`` (a DTensor parameter or moment); plain: ``full``."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if not isinstance(like, DTensor):
        return full
    return distribute_tensor(full.to(like.dtype), like.device_mesh, like.placements)


def gather_full_trainable(model: Any) -> dict[str, torch.Tensor]:
    """name → full value of every trainable (LoRA) parameter, on every rank (a collective under FSDP)."""
    return {n: gather_full(p.detach()).clone() for n, p in model.named_parameters() if p.requires_grad}


@contextlib.contextmanager
def no_sync(module: torch.nn.Module, skip: bool) -> Iterator[None]:
    """Inside a gradient-accumulation run: skip DDP's all-reduce (FSDP's reduce-scatter) until the last
    micro-batch."""
    root = fsdp_root(module)
    if root is not None:  # FSDP2
        root.set_requires_gradient_sync(not skip)
        yield
    elif skip and hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    else:
        yield
