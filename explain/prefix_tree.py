"""Score many prompts that share prefixes, computing every shared prefix once (KV reuse over a token trie).

The perturbations of one SHAP explanation are one prompt with different spans masked, so each
differs from the prompts already scored only after its first masked span (and all share the
template prefix). `PrefixTreeScorer` keeps the keys/values of every token it has computed, indexed
by a trie over token ids, and for a new prompt runs only the tokens after its longest cached
prefix. vLLM's prefix cache does the same at whole-block granularity (32 tokens on CPU), which
on a 40-80-token prompt misses most of the sharing; this works per token.

A batch's new tokens are packed into one row; a 4D mask lets each token attend to its own prompt's
cached ancestors and its own earlier new tokens, and position ids are depths in the prompt, so the
arithmetic is that of scoring each prompt alone (up to float summation order; tests compare with
plain forwards). Only HF causal LMs (peft-wrapped or not) whose attention takes a 4D mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_ROOT = -1


@dataclass
class TreeStats:
    """What the scorer saved: tokens in the prompts vs tokens it ran through the model."""

    prompts: int = 0
    prompt_tokens: int = 0
    computed_tokens: int = 0
    resets: int = 0  # times the store hit `max_cached_tokens` and was dropped

    @property
    def reuse(self) -> float:
        return 1.0 - self.computed_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


class PrefixTreeScorer:
    """Label-token log-probs at the last position of each prompt, reusing cached prefixes.

    One instance per explanation (its store grows with the tokens computed; dropped wholesale past
    ``max_cached_tokens``). Not thread safe: one caller at a time.
    """

    def __init__(
        self,
        model: Any,
        label_token_ids: Sequence[int],
        *,
        chunk_tokens: int = 384,
        max_cached_tokens: int = 32768,
    ) -> None:
        import torch

        self.model = model
        self.label_ids = torch.tensor(list(label_token_ids), dtype=torch.long)
        self.chunk_tokens = max(1, int(chunk_tokens))
        self.max_cached_tokens = max(1, int(max_cached_tokens))
        self.dtype = next(model.parameters()).dtype  # of the additive mask
        self.stats = TreeStats()
        self._reset()

    def _reset(self) -> None:
        self.children: dict[tuple[int, int], int] = {}  # (parent node, token id) -> node (= store row)
        self.keys: list[Any] = []  # per layer [kv_heads, capacity, head_dim]
        self.values: list[Any] = []
        self.size = 0

    # -- public ------------------------------------------------------------------------------------
    def score(self, prompts: Sequence[Sequence[int]]) -> np.ndarray:
        """[len(prompts), n_labels] log-softmax values of the label tokens after each prompt."""
        out = np.empty((len(prompts), len(self.label_ids)), dtype=np.float64)
        if any(len(p) == 0 for p in prompts):
            raise ValueError("empty prompt")
        i = 0
        while i < len(prompts):
            # plan each prompt when its chunk forms, so it reuses what earlier chunks computed
            chunk: list[int] = []
            plans: list[tuple[list[int], list[int]]] = []
            total = 0
            while i < len(prompts):
                plan = self._plan(prompts[i])
                if chunk and total + len(plan[1]) > self.chunk_tokens:
                    break
                chunk.append(i)
                plans.append(plan)
                total += len(plan[1])
                i += 1
            if self.size + total > self.max_cached_tokens:  # bound memory: start over (prefixes recomputed)
                self._reset()
                self.stats.resets += 1
                plans = [self._plan(prompts[k]) for k in chunk]
            out[chunk] = self._run(plans)
        self.stats.prompts += len(prompts)
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        return out

    # -- internals ---------------------------------------------------------------------------------
    def _plan(self, prompt: Sequence[int]) -> tuple[list[int], list[int]]:
        """(cached node path, tokens to compute): the longest cached prefix, leaving ≥ 1 token to run."""
        path: list[int] = []
        node = _ROOT
        for tok in prompt[:-1]:  # the last token always runs: its logits are the answer
            child = self.children.get((node, int(tok)))
            if child is None:
                break
            path.append(child)
            node = child
        return path, [int(t) for t in prompt[len(path) :]]

    def _run(self, plans: list[tuple[list[int], list[int]]]) -> np.ndarray:
        import torch
        from transformers import DynamicCache

        union: dict[int, int] = {}  # cached node -> column in the gathered past
        for path, _ in plans:
            for node in path:
                union.setdefault(node, len(union))
        a = len(union)
        q = sum(len(new) for _, new in plans)
        allowed = torch.zeros((q, a + q), dtype=torch.bool)
        ids = torch.empty(q, dtype=torch.long)
        pos = torch.empty(q, dtype=torch.long)
        last = torch.empty(len(plans), dtype=torch.long)
        row = 0
        for k, (path, new) in enumerate(plans):
            n = len(new)
            cols = torch.tensor([union[node] for node in path], dtype=torch.long)
            block = slice(row, row + n)
            if len(cols):
                allowed[block, cols] = True
            allowed[block, a + row : a + row + n] = torch.ones(n, n, dtype=torch.bool).tril()
            ids[block] = torch.tensor(new, dtype=torch.long)
            pos[block] = torch.arange(len(path), len(path) + n)
            last[k] = row + n - 1
            row += n
        dtype = self.dtype
        mask = torch.zeros((1, 1, q, a + q), dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        gather = torch.tensor(list(union), dtype=torch.long)
        past = DynamicCache()
        if a:
            for layer, (k_store, v_store) in enumerate(zip(self.keys, self.values)):
                past.update(
                    k_store.index_select(1, gather).unsqueeze(0),
                    v_store.index_select(1, gather).unsqueeze(0),
                    layer,
                )
        with torch.inference_mode():
            res = self.model(
                input_ids=ids.unsqueeze(0),
                position_ids=pos.unsqueeze(0),
                attention_mask=mask,
                past_key_values=past,
                use_cache=True,
                logits_to_keep=last,
            )
        logp = torch.log_softmax(res.logits[0].float(), dim=-1)[:, self.label_ids]
        self._store(res.past_key_values, a, q, plans)
        self.stats.computed_tokens += q
        return logp.double().numpy()

    def _store(self, cache: Any, a: int, q: int, plans: list[tuple[list[int], list[int]]]) -> None:
        layers = cache.layers
        if not self.keys:
            for layer in layers:
                kv_heads, dim = layer.keys.shape[1], layer.keys.shape[3]
                cap = max(1024, q)
                self.keys.append(layer.keys.new_empty((kv_heads, cap, dim)))
                self.values.append(layer.values.new_empty((kv_heads, cap, dim)))
        need = self.size + q
        if need > self.keys[0].shape[1]:
            cap = max(need, 2 * self.keys[0].shape[1])
            for i in range(len(self.keys)):
                for store in (self.keys, self.values):
                    grown = store[i].new_empty((store[i].shape[0], cap, store[i].shape[2]))
                    grown[:, : self.size] = store[i][:, : self.size]
                    store[i] = grown
        for i, layer in enumerate(layers):
            self.keys[i][:, self.size : need] = layer.keys[0, :, a : a + q]
            self.values[i][:, self.size : need] = layer.values[0, :, a : a + q]
        row = self.size
        for path, new in plans:
            parent = path[-1] if path else _ROOT
            for tok in new:
                parent = self.children.setdefault((parent, tok), row)
                row += 1
        self.size = need
