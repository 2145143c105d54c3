"""Grouped LoRA matmuls for vLLM's CPU punica path (installed by the vLLM backend on CPU only).

vLLM's portable LoRA ops (``vllm/lora/ops/torch_ops``) gather a copy of the LoRA matrix for every
token (``lora_b_weights[indices]`` → [tokens, out, r]) and run a batched einsum. On a CPU that gather
dominates: measured here, SmolLM2 with one r=8 adapter scored 6× slower than the bare model. A batch
uses few distinct adapters, so we run one dense matmul per distinct adapter index instead: the same
arithmetic, no per-token copies. The write-back (add/assign, slices, padding) is vLLM's own logic,
kept line for line; the e2e parity test (vLLM vs HF ≤ 1e-4) guards the result.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def _grouped(
    inputs: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """outputs[t] = weights[indices[t]] @ inputs[t], one matmul per distinct index: [tokens, out].

    Same shapes as vLLM's einsum("bi, boi -> bo"), including its size-1 broadcast of either side.
    """
    w = weights.squeeze(1) if weights.dim() == 4 else weights  # [n_slots, out, in]
    x = inputs.to(dtype)
    n = max(x.shape[0], indices.shape[0])
    uniq = torch.unique(indices)
    if uniq.numel() == 1:  # the common case: one adapter (or none) for the whole batch
        out = x @ w[int(uniq)].to(dtype).T
        return out.expand(n, -1) if out.shape[0] != n else out
    if x.shape[0] != n:
        x = x.expand(n, -1)
    out = x.new_empty((n, w.shape[1]))
    for idx in uniq.tolist():
        rows = indices == idx
        out[rows] = x[rows] @ w[idx].to(dtype).T
    return out


def bgmv_expand(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs=True):  # noqa: ANN001
    outputs = _grouped(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    common_len = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common_len] += outputs[:limit, :common_len]
    else:
        output_tensor[:, :common_len] = outputs[:limit, :common_len]


def bgmv_shrink(inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling=1.0):  # noqa: ANN001
    outputs = _grouped(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs[:]


def bgmv_expand_slice(
    inputs,
    lora_b_weights,
    output_tensor,
    lora_indices_tensor,
    slice_offset,
    slice_size,  # noqa: ANN001
    add_inputs=True,
):
    outputs = _grouped(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs[:]
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs[:]


def install() -> bool:
    """Swap the grouped ops into vLLM's torch ops and its CPU punica wrapper; idempotent."""
    try:
        from vllm.lora.ops.torch_ops import lora_ops
        from vllm.lora.punica_wrapper import punica_cpu
    except ImportError:  # another vLLM layout: keep its own ops
        logger.warning("vLLM CPU LoRA ops not found; leaving vLLM's per-token gather in place")
        return False
    for name, fn in (
        ("bgmv_expand", bgmv_expand),
        ("bgmv_shrink", bgmv_shrink),
        ("bgmv_expand_slice", bgmv_expand_slice),
    ):
        for mod in (lora_ops, punica_cpu):
            if hasattr(mod, name):
                setattr(mod, name, fn)
    return True
