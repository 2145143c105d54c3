"""HF backend: transformers + peft, the reference implementation and the fallback without vLLM.

Mixed adapters in one forward use peft's ``adapter_names`` (one name per row; ``__base__`` for the
bare model). Rows are right-padded so every real token sees exactly the positions it would see
alone (causal attention never looks right), and the output head runs only at the answer positions
(``logits_to_keep``), which is most of the saving on a 49 k-152 k vocabulary. Concurrent calls are
micro-batched: one worker drains everything queued, sorts by length and runs token-budgeted chunks.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from phishlens.explain.loading import LOAD_LOCK

from .base import AdapterHandle, Backend, BackendError, ScoreRequest, ScoreResult

logger = logging.getLogger(__name__)
BASE = "__base__"  # peft's name for "no adapter" in mixed batches


def torch_dtype(name: str) -> Any:
    """The settings' dtype for ``from_pretrained``: a torch dtype, or "auto" (the checkpoint's own dtype,
    as vLLM reads ``dtype=auto``) so the HF paths load exactly what the engine serves."""
    if name == "auto":
        return "auto"
    import torch

    return getattr(torch, name)


class HFScorer:
    """Synchronous label-token scorer over a (possibly peft-wrapped) causal LM. Used by the HF
    backend and by training/evaluation, so served and evaluated numbers come from one code path."""

    def __init__(self, model: Any, pad_id: int, max_batch_tokens: int = 8192) -> None:
        self.model = model
        self.pad_id = pad_id
        self.max_batch_tokens = max_batch_tokens

    def label_logprobs(
        self,
        prompts: Sequence[Sequence[int]],
        label_ids: Sequence[Sequence[int]],
        adapter_names: Sequence[str] | None,
    ) -> list[tuple[float, ...]]:
        import torch

        from phishlens.explain.hidden import token_batches

        lengths = [len(p) for p in prompts]
        out: list[tuple[float, ...]] = [()] * len(prompts)
        for chunk in token_batches(lengths, self.max_batch_tokens):  # sorted by length: little padding
            width = max(lengths[i] for i in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : lengths[i]] = torch.tensor(list(prompts[i]), dtype=torch.long)
                mask[row, : lengths[i]] = 1
            last = torch.tensor([lengths[i] - 1 for i in chunk])
            keep = torch.unique(last)  # sorted positions whose logits we need
            kwargs: dict[str, Any] = {}
            if adapter_names is not None:
                kwargs["adapter_names"] = [adapter_names[i] for i in chunk]
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, **kwargs).logits
                # logits: [batch, len(keep), vocab]; pick each row's own answer position
                col = torch.searchsorted(keep, last)
                row_logits = logits[torch.arange(len(chunk)), col].float()  # [batch, vocab]
                logp = torch.log_softmax(row_logits, dim=-1)
            for row, i in enumerate(chunk):
                out[i] = tuple(float(logp[row, t]) for t in label_ids[i])
        return out


class HFBackend(Backend):
    name = "hf"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.tokenizer: Any = None
        self.base_sha256 = ""
        self.base_path = ""
        self._model: Any = None  # PeftModel once an adapter is loaded, else the bare model
        self._scorer: HFScorer | None = None
        self._lock = threading.Lock()  # one forward at a time; peft adapter loading mutates modules
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._names: dict[int, str] = {}

    @property
    def max_adapters(self) -> int:
        return self.settings.max_loaded_adapters + 1  # the spare slot a replace loads into (registry.py)

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._drain())

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from phishlens.training.contract.base_models import resolve_base

        base = resolve_base(self.settings.base_model)
        self.base_path, self.base_sha256 = str(base.path), base.sha256
        dtype = torch_dtype(self.settings.dtype)
        with LOAD_LOCK:
            self.tokenizer = AutoTokenizer.from_pretrained(self.base_path)
            self._model = AutoModelForCausalLM.from_pretrained(self.base_path, dtype=dtype).eval()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._scorer = HFScorer(self._model, pad)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._model = None

    async def healthy(self) -> bool:
        return self._model is not None and self._worker is not None and not self._worker.done()

    async def add_adapter(self, adapter: AdapterHandle) -> None:
        await asyncio.to_thread(self._add, adapter)

    def _add(self, adapter: AdapterHandle) -> None:
        from peft import PeftModel

        key = f"a{adapter.adapter_id}"
        try:
            with self._lock, LOAD_LOCK:
                if isinstance(self._model, PeftModel):
                    self._model.load_adapter(str(adapter.path), adapter_name=key, is_trainable=False)
                else:
                    self._model = PeftModel.from_pretrained(
                        self._model, str(adapter.path), adapter_name=key, is_trainable=False
                    ).eval()
                    assert self._scorer is not None
                    self._scorer.model = self._model
        except Exception as e:
            raise BackendError(f"peft could not load adapter {adapter.name}: {e}") from e
        self._names[adapter.adapter_id] = key

    async def remove_adapter(self, adapter: AdapterHandle) -> None:
        key = self._names.pop(adapter.adapter_id, None)
        if key is not None:
            await asyncio.to_thread(self._remove, key)

    def _remove(self, key: str) -> None:
        with self._lock:
            self._model.delete_adapter(key)

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self._queue is None or self._scorer is None:
            raise BackendError("HF backend is not started")
        if not requests:
            return []
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((list(requests), fut))
        return await fut

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            flat = [r for reqs, _ in batch for r in reqs]
            try:
                values = await asyncio.to_thread(self._score_sync, flat)
            except Exception as e:
                logger.exception("HF forward failed")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(
                            e if isinstance(e, BackendError) else BackendError(f"HF forward failed: {e}")
                        )
                continue
            k = 0
            for reqs, fut in batch:
                if not fut.done():
                    fut.set_result(values[k : k + len(reqs)])
                k += len(reqs)

    def _score_sync(self, reqs: list[ScoreRequest]) -> list[ScoreResult]:
        from peft import PeftModel

        assert self._scorer is not None
        names: list[str] | None = None
        with self._lock:
            if isinstance(self._model, PeftModel):
                names = []
                for r in reqs:
                    if r.adapter is None:
                        names.append(BASE)
                    elif r.adapter.adapter_id in self._names:
                        names.append(self._names[r.adapter.adapter_id])
                    else:
                        raise BackendError(f"adapter {r.adapter.name} is not loaded")
            elif any(r.adapter is not None for r in reqs):
                raise BackendError("no adapter is loaded")
            values = self._scorer.label_logprobs(
                [r.prompt_ids for r in reqs], [r.label_token_ids for r in reqs], names
            )
        return [ScoreResult(v, len(r.prompt_ids)) for v, r in zip(values, reqs)]
