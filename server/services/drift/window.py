"""One adapter's live drift window and its persistence: `<state dir>/<adapter>.safetensors`, written
atomically, keyed by the bundle sha256 (state from another bundle version is discarded)."""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path

import numpy as np

from phishlens.explain.reference import SCALAR_FEATURES, ReferenceProfile

from ...state_io import atomic_write_bytes
from .report import AdapterDrift

logger = logging.getLogger(__name__)
STATE_FORMAT = "1"
MAX_LIVE_WORDS = 5000


class LiveWindow:
    """One adapter's live window (numbers only: features, scores, embeddings, decayed word counts) and its
    reference."""

    def __init__(self, name: str, sha: str, ref: ReferenceProfile | None, size: int, seed: int) -> None:
        self.name, self.sha, self.ref, self.size = name, sha, ref, size
        self.scalars: deque[np.ndarray] = deque(maxlen=size)  # [len(SCALAR_FEATURES)] per text
        self.embeddings: deque[np.ndarray] = deque(maxlen=size)  # [dim] per text (if the reference has them)
        self.live_df: dict[str, float] = {}  # decayed document frequency of words, ≈ the last `size` texts
        self.live_n = 0.0
        self.texts_seen = 0
        self.since_eval = 0
        self.rng = np.random.default_rng(seed)
        self.prior = ref.prior.calibration if ref is not None else 0.5  # last estimate (reference quantiles)
        self.report: AdapterDrift | None = None

    def add(self, rows: np.ndarray, emb: np.ndarray | None, bags: list[set[str]]) -> None:
        """Slide the window: `rows` [n, len(SCALAR_FEATURES)], `emb` [n, dim] (when the reference has an
        embedding sample), `bags` each text's words (kept as decayed document frequencies only)."""
        self.scalars.extend(rows)
        if emb is not None and self.ref is not None and self.ref.embedding is not None:
            self.embeddings.extend(emb)
        decay = (1.0 - 1.0 / self.size) ** len(bags)  # ≈ a window of `size` texts, aggregate counts only
        df = {k: v * decay for k, v in self.live_df.items() if v * decay >= 0.05}
        for bag in bags:
            for word in bag:
                df[word] = df.get(word, 0.0) + 1.0
        if len(df) > MAX_LIVE_WORDS:
            df = dict(sorted(df.items(), key=lambda kv: -kv[1])[:MAX_LIVE_WORDS])
        self.live_df, self.live_n = df, self.live_n * decay + len(bags)
        self.texts_seen += len(bags)
        self.since_eval += len(bags)

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        from safetensors.numpy import save

        dim = self.ref.embedding.dim if self.ref and self.ref.embedding else 0
        sc = np.stack(self.scalars) if self.scalars else np.zeros((0, len(SCALAR_FEATURES)))
        em = np.stack(self.embeddings) if self.embeddings else np.zeros((0, dim), dtype=np.float32)
        meta = {
            "format": STATE_FORMAT,
            "adapter": self.name,
            "sha256": self.sha,
            "texts_seen": str(self.texts_seen),
            "live_n": repr(self.live_n),
            "live_df": json.dumps(self.live_df),
        }
        data = save({"scalars": sc.astype(np.float64), "embeddings": em.astype(np.float32)}, metadata=meta)
        atomic_write_bytes(path, data)  # old or new state after a crash, never half; ENOSPC raises OSError

    def restore(self, path: Path) -> bool:
        from safetensors import safe_open

        if not path.is_file():
            return False
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != STATE_FORMAT or meta.get("sha256") != self.sha:
                    logger.info("drift state for %s is from another bundle version: discarded", self.name)
                    return False
                sc, em = f.get_tensor("scalars"), f.get_tensor("embeddings")
            if sc.ndim != 2 or sc.shape[1] != len(SCALAR_FEATURES):
                return False
            self.scalars.extend(sc[-self.size :])
            if len(em) and self.ref and self.ref.embedding and em.shape[1] == self.ref.embedding.dim:
                self.embeddings.extend(em[-self.size :])
            self.texts_seen = int(meta.get("texts_seen", len(sc)))
            self.live_n = float(meta.get("live_n", 0.0))
            self.live_df = {str(k): float(v) for k, v in json.loads(meta.get("live_df", "{}")).items()}
            return True
        except Exception as e:  # noqa: BLE001 - a corrupt state file must not stop serving
            logger.warning("drift state for %s unreadable (%s): starting empty", self.name, type(e).__name__)
            return False
