"""Per-layer hidden states of a causal LM classifier (HF / peft), one naming scheme for layers.

Layer ``i``'s output (the residual stream after block ``i``, before the final norm) is named
``layer.{i}.resid_post``, as TransformerLens names ``blocks.{i}.hook_resid_post``. States are
captured with forward hooks on the decoder blocks while the decoder runs once per batch, so the
same weights and the same active LoRA adapter as the served model produce them; the output head
is never run (the logit lens applies it to the few label rows only).

Two poolings per text and layer: ``last`` (the answer position, where the label is read) and
``mean`` (mean over every prompt token).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Pooling = Literal["last", "mean"]
POOLINGS: tuple[Pooling, ...] = ("last", "mean")


def layer_name(i: int) -> str:
    """The one name of decoder block ``i``'s output."""
    return f"layer.{i}.resid_post"


def decoder(model: Any) -> Any:
    """The inner decoder (``LlamaModel``, ``Gemma3TextModel``...) of a causal LM, peft-wrapped or not."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return m.model


def output_head(model: Any) -> Any:
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    return m.get_output_embeddings()


def n_layers(model: Any) -> int:
    return len(decoder(model).layers)


@dataclass(frozen=True)
class HiddenStates:
    """Pooled residual streams: ``last`` and ``mean`` are float32 ``[n_texts, n_layers, d_model]``.

    ``sequences`` (only when asked for): the full ``[len_i, d_model]`` output of one block per text,
    to resume the forward from there (`collect_hidden(..., start=...)`).
    """

    layers: list[str]
    last: np.ndarray
    mean: np.ndarray
    sequences: list[Any] | None = None

    def pooled(self, pooling: Pooling) -> np.ndarray:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        return self.last if pooling == "last" else self.mean

    @property
    def n_layers(self) -> int:
        return len(self.layers)


def token_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Index chunks sorted by length whose padded size stays under ``max_tokens`` (little padding).

    Shared with training (`training.layers`) and the HF backend: one length-bucketing rule everywhere.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and lengths[i] * (len(cur) + 1) > max_tokens:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


@contextlib.contextmanager
def _blocks(model: Any, start: int, end: int | None) -> Iterator[Any]:
    """Temporarily make the decoder consist of blocks ``start:end`` only (per-layer attention types too)."""
    import torch

    dec = decoder(model)
    layers, cfg = dec.layers, dec.config
    types = getattr(cfg, "layer_types", None)
    dec.layers = torch.nn.ModuleList(list(layers)[start:end])
    if types is not None:
        cfg.layer_types = list(types)[start:end]
    try:
        yield dec
    finally:
        dec.layers = layers
        if types is not None:
            cfg.layer_types = types


def collect_hidden(
    model: Any,
    prompts: Sequence[Sequence[int]],
    pad_id: int = 0,
    max_batch_tokens: int = 4096,
    progress: Any = None,
    keep_sequence_of: int | None = None,
    start: int = 0,
    start_states: Sequence[Any] | None = None,
    end: int | None = None,
) -> HiddenStates:
    """Run the decoder on token-id prompts and keep every block's output, pooled two ways.

    Rows are right-padded: with causal attention every real token sees exactly what it would see
    alone, so a text's states do not depend on its batch-mates (up to float rounding).

    ``keep_sequence_of=k`` also returns block k's full output per prompt. ``start`` with
    ``start_states`` (block ``start-1``'s full outputs, e.g. from a run with ``keep_sequence_of``)
    runs blocks ``start..`` only and returns those layers: adapters that differ only in their top
    blocks share the frozen bottom of the forward. ``end``: stop after block ``end-1``.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("need at least one non-empty prompt")
    if start and (start_states is None or len(start_states) != len(prompts)):
        raise ValueError("start > 0 needs one start state per prompt")
    if start or end is not None:
        with _blocks(model, start, end):
            return _collect(
                model,
                prompts,
                pad_id,
                max_batch_tokens,
                progress,
                keep_sequence_of,
                start,
                start_states if start else None,
            )
    return _collect(model, prompts, pad_id, max_batch_tokens, progress, keep_sequence_of, 0, None)


def _collect(
    model: Any,
    prompts: Sequence[Sequence[int]],
    pad_id: int,
    max_batch_tokens: int,
    progress: Any,
    keep_sequence_of: int | None,
    start: int,
    start_states: Sequence[Any] | None,
) -> HiddenStates:
    import torch

    dec = decoder(model)
    blocks = list(dec.layers)
    n, d = len(prompts), int(dec.config.hidden_size)
    last = np.zeros((n, len(blocks), d), dtype=np.float32)
    mean = np.zeros((n, len(blocks), d), dtype=np.float32)
    seqs: list[Any] | None = [None] * n if keep_sequence_of is not None else None
    captured: list[Any] = [None] * len(blocks)

    def hook(i: int) -> Any:
        def fn(_mod: Any, _inp: Any, out: Any) -> None:
            captured[i] = out[0] if isinstance(out, tuple) else out

        return fn

    handles = [b.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    lengths = [len(p) for p in prompts]
    try:
        for chunk in token_batches(lengths, max_batch_tokens):
            width = max(lengths[i] for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : lengths[i]] = torch.tensor(list(prompts[i]), dtype=torch.long)
                mask[row, : lengths[i]] = 1
            with torch.inference_mode():
                if start_states is None:
                    dec(input_ids=ids, attention_mask=mask, use_cache=False)
                else:
                    h0 = start_states[chunk[0]]
                    emb = h0.new_zeros((len(chunk), width, h0.shape[-1]))
                    for row, i in enumerate(chunk):
                        emb[row, : lengths[i]] = start_states[i]
                    dec(inputs_embeds=emb, attention_mask=mask, use_cache=False)
                pos = torch.tensor([lengths[i] - 1 for i in chunk])
                rows = torch.arange(len(chunk))
                m = mask.unsqueeze(-1).float()  # [batch, width, 1]
                for li, h in enumerate(captured):
                    h = h.float()  # [batch, width, d_model]
                    last[chunk, li] = h[rows, pos].numpy()
                    mean[chunk, li] = ((h * m).sum(1) / m.sum(1)).numpy()
                if seqs is not None:
                    for row, i in enumerate(chunk):
                        seqs[i] = captured[keep_sequence_of - start][row, : lengths[i]].clone()
            if progress is not None:
                progress.update(len(chunk))
    finally:
        for h in handles:
            h.remove()
    return HiddenStates([layer_name(start + i) for i in range(len(blocks))], last, mean, seqs)
