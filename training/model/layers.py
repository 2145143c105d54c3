"""Split a decoder-only causal LM at a layer: run the frozen lower part once, train/score the top.

The lower layers' output (the residual stream entering layer ``split``) is computed once per text
and cached; LoRA lives only in layers ``split..n-1``, so every training step and every extra adapter
evaluated on the same texts costs only the top layers. Works for Llama, Mistral, Gemma 2/3: the
top part runs through the model's own forward with the layer list (and per-layer attention types)
temporarily sliced, so rotary embeddings, masks and final norm stay the model's own code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

# One definition of the model anatomy and length bucketing, shared with explain/ (training -> explain).
from phishlens.explain.hidden import _blocks as blocks
from phishlens.explain.hidden import decoder, n_layers, output_head, token_batches  # noqa: F401 - re-exported


class _Stop(Exception):
    pass


def lm_head(model: Any) -> Any:
    return output_head(model)


def label_rows(head: Any, label_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([n_labels, d_model] rows of the output head for the label tokens, their biases or None): only these
    rows are ever read; a head loaded into FSDP shards holds nothing else (`sharded.LabelHead`)."""
    if hasattr(head, "label_rows"):
        return head.label_rows(label_ids)
    bias = getattr(head, "bias", None)
    return head.weight[list(label_ids)], None if bias is None else bias[list(label_ids)]


def top_only(model: Any, split: int) -> contextlib.AbstractContextManager[Any]:
    """Temporarily make the decoder consist of layers ``split..`` only."""
    return blocks(model, split, None)


def _pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.inference_mode()
def lower_states(
    model: Any,
    prompts: Sequence[Sequence[int]],
    split: int,
    pad_id: int,
    max_tokens: int = 8192,
    progress: Any = None,
    on_batch: Callable[[list[int], list[torch.Tensor]], None] | None = None,
) -> list[torch.Tensor]:
    """Residual stream entering layer ``split`` for each prompt: a list of [len_i, d_model] tensors.

    Stops the forward right after layer ``split-1`` (a hook raises), so the top layers and the head
    are never computed. ``on_batch(indices, states)`` sees each token batch as soon as it is done, so a
    caller can keep the work of a pass that is interrupted later.
    """
    dec = decoder(model)
    if split == 0:
        emb = dec.embed_tokens
        states = [emb(torch.tensor([list(p)]))[0].clone() for p in prompts]
        if on_batch is not None:
            on_batch(list(range(len(prompts))), states)
        if progress is not None:
            progress.update(len(prompts))
        return states
    captured: dict[str, torch.Tensor] = {}

    def hook(_mod: Any, _inp: Any, out: Any) -> None:
        captured["h"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    handle = dec.layers[split - 1].register_forward_hook(hook)
    result: list[torch.Tensor] = [torch.empty(0)] * len(prompts)
    try:
        for chunk in token_batches([len(p) for p in prompts], max_tokens):
            ids, mask = _pad([prompts[i] for i in chunk], pad_id)
            try:
                dec(input_ids=ids, attention_mask=mask, use_cache=False)
            except _Stop:
                pass
            h = captured.pop("h")  # [batch, width, d_model]
            for row, i in enumerate(chunk):
                result[i] = h[row, : len(prompts[i])].clone()
            if on_batch is not None:
                on_batch(list(chunk), [result[i] for i in chunk])
            if progress is not None:
                progress.update(len(chunk))
    finally:
        handle.remove()
    return result


def top_label_logits(
    model: Any, states: Sequence[torch.Tensor], split: int, label_ids: Sequence[int]
) -> torch.Tensor:
    """Label-token logits [batch, n_labels] at each sequence's last position, from cached states.

    Differentiable (used in training); wrap in ``torch.inference_mode`` to score.
    """
    width = max(s.shape[0] for s in states)
    d = states[0].shape[1]
    h = states[0].new_zeros((len(states), width, d))
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        h[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    last = torch.tensor([s.shape[0] - 1 for s in states])
    with top_only(model, split) as dec:
        out = dec(inputs_embeds=h, attention_mask=mask, use_cache=False).last_hidden_state
    final = out[torch.arange(len(states)), last]  # [batch, d_model], after the final norm
    w, bias = label_rows(lm_head(model), label_ids)
    logits = final @ w.T
    if bias is not None:
        logits = logits + bias
    cfg = decoder(model).config
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:  # Gemma 2 caps logits; the served model does too
        logits = torch.tanh(logits / cap) * cap
    return logits
