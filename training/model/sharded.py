"""Loading a base straight into FSDP2 shards (`phishlens train --strategy fsdp` under torchrun), so that no
rank ever holds the whole base: the peak per rank is its share of the base plus one layer being gathered.

1. The causal LM is built from its config on the meta device (shapes, no memory); the output head is swapped
   for `LabelHead`, which keeps only the label tokens' rows (training and scoring read nothing else:
   `layers.top_label_logits`), and LoRA is added by the caller's function (`train.lora_model`, the
   single-process code). peft draws the LoRA initial values on the CPU from the global RNG, exactly as in one
   process (building on meta draws nothing, and neither does `from_pretrained`), then moves them to the base
   layer's device, which would lose them on meta: during that call the base's meta parameters are stood in
   for by zero-stride CPU tensors (`_cpu_stand_ins`), and the LoRA values are kept aside (they are small)
   until the shards exist.
2. `fully_shard` over a gloo CPU mesh: every decoder layer (the frozen lower ones too) and the input
   embedding is its own shard group, gathered for its forward (and backward) and freed after; the decoder is
   the root (its forward is where both the lower-layer pass and the training step enter); the final norm
   (d values) and the label rows stay replicated.
3. `to_empty(device="cpu")` allocates each rank's shards only; every rank then reads only its rows of each
   tensor from the safetensors files, straight into its shards (`_Checkpoint`: positioned reads, not a memory
   map, whose touched pages would count as resident), the LoRA shards get the kept initial values, and the
   non-persistent buffers (rotary frequencies, a scaled embedding's factor) are recomputed by the model's own
   `_init_weights`, as `from_pretrained` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import resource
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from phishlens.training.contract.base_models import PreparedBase
from phishlens.training.model.distributed import DistContext
from phishlens.training.model.layers import decoder

logger = logging.getLogger(__name__)


class LabelHead(torch.nn.Module):
    """The output head reduced to the label tokens' rows (replicated; 2 x d values instead of vocab x d)."""

    def __init__(self, token_ids: Sequence[int], d_model: int, bias: bool, dtype: torch.dtype) -> None:
        super().__init__()
        self.token_ids = list(token_ids)
        self.rows = torch.nn.Parameter(torch.empty(len(token_ids), d_model, dtype=dtype), requires_grad=False)
        self.bias_rows = (
            torch.nn.Parameter(torch.empty(len(token_ids), dtype=dtype), requires_grad=False)
            if bias
            else None
        )

    def label_rows(self, label_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight rows, bias or None) of ``label_ids``, which must be among the loaded tokens."""
        missing = [t for t in label_ids if t not in self.token_ids]
        if missing:
            raise ValueError(f"label head holds tokens {self.token_ids}, not {missing}")
        idx = [self.token_ids.index(t) for t in label_ids]
        return self.rows[idx], None if self.bias_rows is None else self.bias_rows[idx]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a sharded-loaded model has only the label rows of its head: use label_rows")


_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class _Checkpoint:
    """Rows of the tensors of a safetensors checkpoint (one file or an index), read on demand with plain
    positioned reads straight into the destination.

    Not through a memory map (`safe_open(...).get_slice`): every page a map touches counts in the process's
    resident memory until the file is closed, so a rank reading its half of every tensor would peak at its
    shards plus that half again (measured: a full base per rank); the page cache the reads go through does not
    count. The format is a little-endian u64 header size, a JSON header (dtype, shape, byte offsets of each
    tensor) and the row-major data.
    """

    def __init__(self, path: Path) -> None:
        index = path / "model.safetensors.index.json"
        files = (
            sorted({path / f for f in json.loads(index.read_text())["weight_map"].values()})
            if index.is_file()
            else sorted(path.glob("*.safetensors"))
        )
        self._handles = [open(f, "rb") for f in files]  # noqa: SIM115 - closed in close()
        self._where: dict[str, tuple[Any, torch.dtype, tuple[int, ...], int]] = {}
        for fh in self._handles:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
            for name, info in header.items():
                if name != "__metadata__":
                    begin = 8 + size + info["data_offsets"][0]
                    self._where[name] = (fh, _DTYPES[info["dtype"]], tuple(info["shape"]), begin)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def read_rows(self, name: str, out: torch.Tensor, start: int = 0) -> None:
        """Fill ``out`` with rows ``start : start + len(out)`` (dim 0) of tensor ``name``, in out's dtype."""
        fh, dtype, shape, begin = self._where[name]
        if tuple(out.shape[1:]) != shape[1:] or (shape and start + out.shape[0] > shape[0]):
            raise ValueError(f"{name}: checkpoint shape {shape}, rows from {start} into {tuple(out.shape)}")
        row_bytes = dtype.itemsize * math.prod(shape[1:])
        direct = out.dtype == dtype and out.is_contiguous()
        target = out if direct else torch.empty(out.shape, dtype=dtype)
        buf = target.reshape(-1).view(torch.uint8).numpy()
        fh.seek(begin + start * row_bytes)
        if fh.readinto(buf) != buf.nbytes:
            raise ValueError(f"{name}: checkpoint file ends early")
        if not direct:
            out.copy_(target)

    def close(self) -> None:
        for fh in self._handles:
            fh.close()


def _local_rows(param: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(writable local tensor, first row, row count) of this rank's share of a parameter: FSDP2 shards dim 0
    as ``torch.chunk`` does; a plain tensor is all of it."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(param, DTensor):
        return param.data, 0, param.shape[0] if param.dim() else 0
    (placement,) = param.placements
    assert isinstance(placement, Shard) and placement.dim == 0, placement
    mesh = param.device_mesh
    chunk = math.ceil(param.shape[0] / mesh.size())
    start = min(mesh.get_local_rank() * chunk, param.shape[0])
    local = param.to_local()
    if local.shape[0] != min(chunk, param.shape[0] - start):
        raise RuntimeError(f"unexpected FSDP shard of {tuple(param.shape)}: local {tuple(local.shape)}")
    return local, start, local.shape[0]


def _fill(param: torch.Tensor, write: Callable[[torch.Tensor, int], None]) -> None:
    """``write(local, first_row)`` this rank's rows of ``param`` into its local tensor."""
    local, start, n = _local_rows(param)
    if param.dim() == 0 or n:
        write(local, start)


@contextlib.contextmanager
def _cpu_stand_ins(model: torch.nn.Module) -> Iterator[None]:
    """Inside: every meta parameter is a CPU tensor of its shape backed by one value (stride 0, no memory).

    peft initialises LoRA on the CPU, then moves it to the base layer's device; on a meta base that move drops
    the values. With stand-ins the adapter stays on the CPU; the meta parameters are put back after (with the
    requires_grad peft set), so the base is still never materialised.
    """
    swapped = []
    for mod in model.modules():
        for attr, p in list(mod._parameters.items()):
            if p is not None and p.is_meta:
                one = torch.zeros((), dtype=p.dtype).expand(p.shape)
                mod._parameters[attr] = torch.nn.Parameter(one, requires_grad=p.requires_grad)
                swapped.append((mod, attr, p))
    try:
        yield
    finally:
        for mod, attr, p in swapped:
            p.requires_grad_(mod._parameters[attr].requires_grad)
            mod._parameters[attr] = p


def _return_freed_gathers_to_the_os() -> None:
    """Every gathered layer is freed after its forward; under glibc's dynamic mmap threshold (which rises to
    the largest block freed) those blocks come from the heap and stay resident after they are freed (measured:
    the lower-layer pass then grew each rank by two thirds of a base). A fixed 1 MiB threshold keeps every
    block that size and larger in its own mapping, returned to the OS on free."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (glibc malloc.h)


def peak_rss_mb() -> float:
    """This process's peak resident set so far: VmHWM (Linux; unlike ru_maxrss it starts afresh at exec, so a
    child forked from a big parent does not inherit the parent's peak), else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_sharded(
    base: PreparedBase,
    add_lora: Callable[[Any], tuple[Any, int, list[str]]],
    label_ids: Sequence[int],
    ctx: DistContext,
    dtype: str = "float32",
) -> tuple[Any, int, list[str]]:
    """(peft model sharded over ``ctx``'s ranks, split, LoRA targets), every rank reading only its shards.

    ``add_lora(model) -> (peft model, split, targets)`` is the single-process LoRA code; call this where one
    process would load the base (same RNG state), and every rank must call it (collective).
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor
    from transformers import AutoConfig, AutoModelForCausalLM

    _return_freed_gathers_to_the_os()
    torch_dtype = getattr(torch, dtype)
    config = AutoConfig.from_pretrained(str(base.path))
    rss0 = peak_rss_mb()
    with torch.device("meta"):
        causal = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    # checkpoint name of every base parameter, by (module, attribute): peft and FSDP swap the parameter
    # objects but keep the modules
    names = {
        (mod, attr): f"{prefix}.{attr}" if prefix else attr
        for prefix, mod in causal.named_modules()
        for attr, _ in mod.named_parameters(recurse=False)
    }
    head_name = next(n for (mod, _), n in names.items() if mod is causal.get_output_embeddings())
    with torch.device("meta"):
        head = LabelHead(
            label_ids,
            config.get_text_config().hidden_size,
            causal.get_output_embeddings().bias is not None,
            torch_dtype,
        )
    causal.set_output_embeddings(head)
    with _cpu_stand_ins(causal):
        model, split, targets = add_lora(causal)
    lora_init = {
        (mod, attr): p.detach().clone()
        for mod in model.modules()
        for attr, p in mod.named_parameters(recurse=False)
        if p.requires_grad
    }

    mesh = init_device_mesh("cpu", (ctx.world,))
    dec = decoder(model)
    for layer in dec.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(dec.embed_tokens, mesh=mesh)
    sharded = {p for m in (*dec.layers, dec.embed_tokens) for p in m.parameters()}
    fully_shard(dec, mesh=mesh, ignored_params={p for p in dec.parameters() if p not in sharded})
    model.to_empty(device="cpu")

    # non-persistent buffers (rotary inverse frequencies, a scaled embedding's factor): recomputed by the
    # model's own initialiser, as from_pretrained does; parameters it touches are overwritten just below
    persistent = set(model.state_dict())
    owners = {
        mod
        for prefix, mod in model.named_modules()
        for attr, _ in mod.named_buffers(recurse=False)
        if (f"{prefix}.{attr}" if prefix else attr) not in persistent
    }
    with torch.no_grad():
        for mod in owners:
            causal._init_weights(mod)

    ckpt = _Checkpoint(base.path)
    held = total = replicated = 0
    try:
        with torch.no_grad():
            for mod in model.modules():
                if mod is head:
                    continue
                for attr, p in mod.named_parameters(recurse=False):
                    if (mod, attr) in lora_init:
                        init = lora_init[(mod, attr)]
                        _fill(p, lambda out, a, t=init: out.copy_(t[a : a + len(out)] if t.dim() else t))
                    elif names.get((mod, attr)) in ckpt:
                        key = names[(mod, attr)]
                        _fill(p, lambda out, a, k=key: ckpt.read_rows(k, out, a))
                    else:
                        raise ValueError(
                            f"sharded loading: {base.path} has no tensor {names.get((mod, attr))!r} for "
                            f"{type(mod).__name__}.{attr}"
                        )
                    if isinstance(p, DTensor):
                        held, total = held + p.to_local().numel(), total + p.numel()
                    else:
                        replicated += p.numel()
            # the label rows: the head's own tensor, or the input embedding's when the two are tied
            src = head_name if head_name in ckpt else names[(dec.embed_tokens, "weight")]
            replicated += head.rows.numel() + (0 if head.bias_rows is None else head.bias_rows.numel())
            for i, t in enumerate(label_ids):
                ckpt.read_rows(src, head.rows[i : i + 1], t)
                if head.bias_rows is not None:
                    ckpt.read_rows(head_name.rsplit(".", 1)[0] + ".bias", head.bias_rows[i : i + 1], t)
    finally:
        ckpt.close()
    logger.info(
        "fsdp: rank %d loaded %d of %d sharded parameter values straight into its shards, %d replicated "
        "(peak RSS %.0f MB, %.0f MB before the model)",
        ctx.rank,
        held,
        total,
        replicated,
        peak_rss_mb(),
        rss0,
    )
    return model, split, targets
