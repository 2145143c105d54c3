"""Logit lens: P(phishing) read from every layer's residual stream, calibrated as served.

For the last-token state ``h_l`` of block ``l`` the lens computes the model's own final norm and
output head, restricted to the two label rows, then the served calibration:

    margin_l = (W[phishing] - W[legit]) · norm(h_l)   (+ head bias, logit soft-capping as the model does)
    P_l      = sigmoid(margin_l / T)

The served probability is ``sigmoid((log p(phishing) - log p(legit)) / T)`` over the full vocabulary;
the log-softmax normaliser cancels in the difference, so the last entry of the curve equals the
served probability (tests compare it with the HF scoring path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .hidden import decoder, output_head


@dataclass(frozen=True)
class LogitLens:
    """Reads label margins from residual states with the model's final norm and head rows (frozen copies)."""

    norm: Any  # the model's final norm module
    w_labels: Any  # torch [2, d_model]: head rows of (phishing, legit)
    b_labels: Any  # torch [2] or None
    softcap: float | None

    @classmethod
    def of(cls, model: Any, label_ids: Sequence[int]) -> LogitLens:
        if len(label_ids) != 2:
            raise ValueError("the logit lens reads exactly two label tokens (phishing, legit)")
        head = output_head(model)
        ids = list(label_ids)
        w = head.weight[ids].detach().float().clone()
        b = head.bias[ids].detach().float().clone() if getattr(head, "bias", None) is not None else None
        cap = getattr(decoder(model).config, "final_logit_softcapping", None)
        return cls(decoder(model).norm, w, b, float(cap) if cap else None)

    def margins(self, last_states: np.ndarray) -> np.ndarray:
        """``[..., d_model]`` pre-norm states → ``[...]`` label margins (logit phishing - logit legit)."""
        import torch

        x = torch.as_tensor(np.ascontiguousarray(last_states), dtype=torch.float32)
        with torch.inference_mode():
            p = next(self.norm.parameters(), None)
            dtype = p.dtype if p is not None else torch.float32
            z = self.norm(x.to(dtype)).float()
            logits = z @ self.w_labels.T
            if self.b_labels is not None:
                logits = logits + self.b_labels
            if self.softcap:
                logits = torch.tanh(logits / self.softcap) * self.softcap
            return (logits[..., 0] - logits[..., 1]).numpy().astype(np.float64)

    def probabilities(self, last_states: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """``[n_texts, n_layers, d_model]`` → ``[n_texts, n_layers]`` calibrated P(phishing) per layer."""
        return sigmoid(self.margins(last_states) / float(temperature))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=np.float64)))


def decision_layer(curve: Sequence[float], threshold: float = 0.5, settle: float = 0.1) -> int | None:
    """First layer from which the lens stays on the final verdict's side of ``threshold`` with a
    margin of ``settle`` (where the decision "forms"); None if it never settles before the end."""
    c = np.asarray(curve, dtype=float)
    if c.size == 0:
        return None
    final_pos = c[-1] >= threshold
    ok = (c >= threshold + settle) if final_pos else (c <= threshold - settle)
    if not ok[-1]:
        return None
    i = len(c) - 1
    while i > 0 and ok[i - 1]:
        i -= 1
    return int(i)
