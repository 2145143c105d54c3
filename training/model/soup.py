"""A uniform soup of LoRA fits: the mean of their weight deltas, written exactly as one LoRA adapter.

Fits of one recipe that differ only in the fit seed (batch order, dropout) start from the same LoRA
initialisation and data; the mean of their weights (a "model soup", Wortsman et al. 2022) is one model whose
verdicts do not depend on which seed a retrain drew (docs/eval/experiments.md, "The fit seed's noise").
A LoRA delta is ``s * B @ A`` (``s = alpha / r``), so the mean of n deltas is not the LoRA of the mean A and
mean B; it is exactly ``B @ A`` for ``B = [s_1 B_1 / n, ..., s_n B_n / n]`` (columns) and ``A = [A_1; ...;
A_n]`` (rows) at scaling 1 (alpha = rank). The soup is therefore an ordinary adapter of rank ``sum(r_i)``:
the server loads and batches it like any other, with no second pass per request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

_A, _B = ".lora_A.weight", ".lora_B.weight"


def soup_lora(parts: Sequence[tuple[Mapping[str, torch.Tensor], float]]) -> dict[str, torch.Tensor]:
    """The tensors of the adapter whose delta is the mean of the parts' deltas.

    ``parts``: (peft state dict, scaling alpha / r) per fit. Every fit must adapt the same modules; the
    result has rank ``sum(r_i)`` and must be served with ``lora_alpha`` equal to that rank (scaling 1).
    """
    if len(parts) < 2:
        raise ValueError("a soup needs at least two adapters")
    keys = set(parts[0][0])
    for i, (state, _) in enumerate(parts[1:], start=2):
        if set(state) != keys:
            diff = sorted(keys ^ set(state))
            raise ValueError(f"adapter {i} adapts other modules than adapter 1 (e.g. {diff[0]})")
    modules = sorted(k[: -len(_A)] for k in keys if k.endswith(_A))
    other = sorted(k for k in keys if not k.endswith((_A, _B)))
    if other or len(modules) * 2 != len(keys):
        raise ValueError(f"only plain LoRA A/B weights can be averaged; found {(other or sorted(keys))[0]}")
    n = len(parts)
    out: dict[str, torch.Tensor] = {}
    for mod in modules:
        out[mod + _A] = torch.cat([state[mod + _A] for state, _ in parts], dim=0).contiguous()
        out[mod + _B] = torch.cat([state[mod + _B] * (s / n) for state, s in parts], dim=1).contiguous()
    return out
