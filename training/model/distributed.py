"""Data-parallel training under `torchrun` (DESIGN.md §6a: torch.distributed, not a home-made launcher).

    torchrun --nproc_per_node 4 $(which phishlens) train --config specialist-sms      # 4 processes, 1 node
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-endpoint host:29400 $(which phishlens) train ...

`torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; `phishlens train` then joins the process group
(gloo: the training code runs on CPUs — placing the model and its batches on `cuda:LOCAL_RANK` with NCCL is
the step a GPU cluster needs, docs/deploy.md §4) and `finetune.fit` trains with PyTorch DDP. Every rank builds the same seeded
global batch and takes its strided share of it; the per-rank loss is scaled so DDP's gradient average is
the gradient of the mean loss over the *global* batch, so N processes with batch_size B give the adapter one
process with batch_size B gives (up to float summation order; exactly the same batches and LR schedule).
LoRA dropout draws its masks per rank, so with dropout > 0 the two runs agree in distribution only.

Only rank 0 writes checkpoints, logs progress and writes the bundle; the others wait at a barrier.

DDP replicates the base on each device: right while it fits one (SmolLM2, Gemma-3-270M, an 8-9 B base in
bf16 on one 24 GB+ GPU). FSDP for larger bases is not implemented; docs/deploy.md §4 says what it needs.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: Sequence[int]) -> list[int]:
        """This rank's strided share of a global batch (ranks beyond the batch size get nothing)."""
        return list(batch[self.rank::self.world])

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

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop decisions must agree or the ranks deadlock)."""
        if not self.enabled:
            return flag
        t = torch.tensor([int(flag)])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


SINGLE = DistContext()


def from_env() -> DistContext:
    """Join the process group `torchrun` describes; a plain process (no WORLD_SIZE > 1) stays single."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    dist = torch.distributed
    if not dist.is_initialized():
        # gloo: the model and its batches live on the CPU (train.load_model); rank 0 evaluates and writes the
        # bundle while the others wait at a barrier, hence hours of timeout
        dist.init_process_group(backend="gloo", timeout=datetime.timedelta(hours=12))
        logger.info("joined gloo process group: rank %d of %d", dist.get_rank(), dist.get_world_size())
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


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
    """`head` ready for data-parallel training on this rank (unchanged when single)."""
    if not ctx.enabled:
        return head
    from torch.nn.parallel import DistributedDataParallel as DDP

    # The frozen base is loaded from the same files on every rank: skip broadcasting it (only LoRA syncs).
    frozen = [n for n, p in head.named_parameters() if not p.requires_grad]
    frozen += [n for n, _ in head.named_buffers()]
    DDP._set_params_and_buffers_to_ignore_for_model(head, frozen)
    return DDP(head, broadcast_buffers=False)  # CPU module: no device_ids


@contextlib.contextmanager
def no_sync(module: torch.nn.Module, skip: bool) -> Iterator[None]:
    """Inside a gradient-accumulation run: skip DDP's all-reduce until the last micro-batch."""
    if skip and hasattr(module, "no_sync"):
        with module.no_sync():
            yield
    else:
        yield
