"""The server's transformers copy of the base model, with the registry's adapters loaded into it.

vLLM does not expose hidden states (/v1/probe) and caches prefixes only in whole blocks (/v1/explain's
prefix-tree engine needs per-token K/V reuse), so both services share this one copy, loaded on first
use. Each adapter is loaded from the same bundle the backend serves (the registry checked the base
hash). peft's active adapter is global state: hold ``lock`` around `activate` and the forwards that
rely on it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from phishlens.explain.loading import LOAD_LOCK

from ..settings import Settings
from .base import BackendError
from .hf_backend import torch_dtype

if TYPE_CHECKING:  # the registry imports the backends, not the other way round
    from ..registry import AdapterEntry

logger = logging.getLogger(__name__)


class HFReplica:
    """The lazily loaded transformers base model with adapters; `activate` selects one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokenizer: Any = None
        self.base_sha256 = ""
        self.model: Any = None
        self._adapters: dict[str, str] = {}  # bundle sha256 → peft adapter name
        self.lock = threading.Lock()  # one forward at a time; adapter loading mutates modules
        self.on_forget: list[Any] = []  # callbacks(sha256) when an adapter's weights are freed
        self.closed = False  # set by `close` (shutdown)

    def _load_base(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from phishlens.training.contract.base_models import resolve_base

        base = resolve_base(self.settings.base_model)
        dtype = torch_dtype(self.settings.dtype)
        with LOAD_LOCK:
            self.tokenizer = AutoTokenizer.from_pretrained(str(base.path))
            self.model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=dtype).eval()
        self.base_sha256 = base.sha256
        logger.info("HF replica loaded base %s", base.name)

    def activate(self, entry: AdapterEntry, live: set[str]) -> Any:
        """Make ``entry``'s adapter the active one (loading it on first use); forget unloaded ones.

        Returns the model. Call with ``lock`` held.
        """
        if self.model is None:
            self._load_base()
        if entry.manifest.base_model.sha256 != self.base_sha256:
            raise BackendError(f"adapter {entry.name} was trained on another base than the server's HF copy")
        key = entry.sha256
        if key not in self._adapters:
            name = f"p{len(self._adapters)}_{key[:12]}"
            with LOAD_LOCK:
                self._load_adapter(entry, name)
            self._adapters[key] = name
        self.model.set_adapter(self._adapters[key])
        for stale in [k for k in self._adapters if k not in live and k != key]:
            try:  # bundles no longer served: free their weights
                self.model.delete_adapter(self._adapters.pop(stale))
                for forget in self.on_forget:
                    forget(stale)
            except Exception:
                logger.warning("could not free a stale adapter in the HF replica")
        return self.model

    def _load_adapter(self, entry: AdapterEntry, name: str) -> None:
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(entry.bundle.path), adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(
                self.model, str(entry.bundle.path), adapter_name=name, is_trainable=False
            ).eval()

    def close(self) -> None:
        """Free the weights (app shutdown); a later `activate` would load them again."""
        self.model = None  # a forward still running in a worker keeps its own reference until it returns
        self.tokenizer = None
        self._adapters.clear()
        self.closed = True
