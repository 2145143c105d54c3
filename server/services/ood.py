"""Per-result out-of-distribution flag (issue 13 item 4): "should this verdict be trusted?".

Each (text, adapter) result gets `explain.ood`'s score of the text the adapter's model saw against that
adapter's bundled reference (the drift reference, format 2), and a flag at the threshold that flags
`ood_flag_rate` of the reference rows (computed at first use from the reference's stored embeddings,
cached per adapter name and bundle sha256). Adapters without a reference (or one without embeddings)
get no `ood`. Embeddings are computed once per distinct (text, truncation) and handed on to the drift
monitor, which then does not embed the same texts again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from phishlens.explain.ood import OodModel, OodVerdict
from phishlens.explain.reference import ReferenceError, ReferenceProfile

from ..registry import AdapterEntry
from ..settings import Settings

logger = logging.getLogger(__name__)
Embed = Callable[[Sequence[str], int], np.ndarray]  # (texts, max_tokens) → [n, dim] unit vectors


def reference_path(entry: AdapterEntry) -> Path | None:
    """The bundle's drift reference (reference.json), if its manifest names one."""
    fname = entry.manifest.extras.get("reference")
    return entry.bundle.path / Path(fname).name if fname else None


class OodService:
    """OodModel per (adapter, sha256); `assess` runs in a worker thread (embedding is CPU work)."""

    def __init__(self, settings: Settings, embed: Embed | None = None) -> None:
        self.flag_rate = settings.ood_flag_rate
        self._embed_fn = embed  # injectable (tests); else MiniLM per truncation, loaded on first need
        self._embedders: dict[int, object] = {}
        self._models: dict[tuple[str, str], OodModel | None] = {}
        self._lock = threading.Lock()

    def model(self, entry: AdapterEntry) -> OodModel | None:
        key = (entry.name, entry.sha256)
        with self._lock:
            if key not in self._models:
                self._models = {k: v for k, v in self._models.items() if k[0] != entry.name}  # older versions
                self._models[key] = self._load(entry)
            return self._models[key]

    def _load(self, entry: AdapterEntry) -> OodModel | None:
        path = reference_path(entry)
        if path is None:
            return None
        try:
            ref = ReferenceProfile.load(path)
        except ReferenceError as e:
            logger.warning("adapter %s: no OOD flag: %s", entry.name, e)
            return None
        return OodModel.of(ref.embedding, self.flag_rate) if ref.embedding is not None else None

    def embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        if self._embed_fn is not None:
            return np.asarray(self._embed_fn(texts, max_tokens), dtype=np.float32)
        with self._lock:  # one Embedder per truncation even under concurrent first requests
            if max_tokens not in self._embedders:
                from phishlens.explain.embed import Embedder

                self._embedders[max_tokens] = Embedder(max_tokens=max_tokens)  # as the reference was embedded
            embedder = self._embedders[max_tokens]
        return embedder(texts)  # type: ignore[operator]

    def assess(
        self, pairs: Sequence[tuple[AdapterEntry, str]]
    ) -> tuple[list[OodVerdict | None], dict[tuple[int, str], np.ndarray]]:
        """One verdict per (adapter, model text) pair (None: the adapter has no embedding reference), and
        the embeddings computed, by (max_tokens, text)."""
        models = [self.model(e) for e, _ in pairs]
        todo: dict[int, dict[str, None]] = {}  # max_tokens → distinct texts, in order
        for m, (_, text) in zip(models, pairs):
            if m is not None:
                todo.setdefault(m.max_tokens, {})[text] = None
        vecs: dict[tuple[int, str], np.ndarray] = {}
        for mt, texts in todo.items():
            for t, v in zip(texts, self.embed(list(texts), mt)):
                vecs[(mt, t)] = v
        out: list[OodVerdict | None] = [None] * len(pairs)
        by_model: dict[int, list[int]] = {}  # id(model) → positions (one kNN matmul per adapter)
        for k, m in enumerate(models):
            if m is not None:
                by_model.setdefault(id(m), []).append(k)
        for ks in by_model.values():
            m = models[ks[0]]
            assert m is not None
            x = np.stack([vecs[(m.max_tokens, pairs[k][1])] for k in ks])
            for k, v in zip(ks, m.verdicts(x)):
                out[k] = v
        return out, vecs
