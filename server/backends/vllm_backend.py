"""vLLM backend: an in-process `LLMEngine` driven by one thread, with per-request LoRA.

Why a thread and not `AsyncLLM`: on a CPU host the in-process engine (no engine-core subprocess,
``VLLM_ENABLE_V1_MULTIPROCESSING=0``) starts in seconds and is faster on few cores, and vLLM's async
client requires the multiprocess core. The thread owns the engine (vLLM engines are not thread
safe): it drains a queue of new requests and adapter commands, adds them, and steps the engine.
Requests that arrive while a step runs join the next step — continuous batching across HTTP calls,
with mixed adapters in one batch. ``max_tokens=1`` + ``logprob_token_ids`` returns exactly the
label-token log-probs at the answer position; prefix caching shares the template prefix.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .base import AdapterHandle, Backend, BackendError, ScoreRequest, ScoreResult

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    requests: Sequence[ScoreRequest]
    future: Future
    results: dict[int, ScoreResult] = field(default_factory=dict)
    error: BaseException | None = None


def _llvmlite_scan_safe() -> None:
    """Let vLLM's CPU kernel rebinding start when numba (shap) was imported first.

    At worker start vLLM scans every module attribute and reads ``vars(value)``; llvmlite's lazy
    ``ffi.lib`` answers any attribute, ``__dict__`` included, with a C-function wrapper, and the scan
    crashes ("'_lib_fn_wrapper' object has no attribute 'get'"). Dunder names are never C symbols:
    make them raise AttributeError. A no-op when llvmlite is not loaded.
    """
    ffi = sys.modules.get("llvmlite.binding.ffi")
    cls = getattr(ffi, "_lib_wrapper", None)
    if cls is None or getattr(cls, "_phishlens_dunder_safe", False):
        return
    lookup = cls.__getattr__

    def __getattr__(self: Any, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return lookup(self, name)

    cls.__getattr__ = __getattr__
    cls._phishlens_dunder_safe = True


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.tokenizer: Any = None
        self.base_sha256: str = ""
        self.base_path: str = ""
        self._engine: Any = None
        self._inbox: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._loras: dict[int, Any] = {}
        self._dead: BaseException | None = None
        self._on_cpu = False

    @property
    def max_adapters(self) -> int:
        return self.settings.max_loaded_adapters + 1  # the spare slot a replace loads into (registry.py)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        # The engine is built on the thread that will step it: vLLM binds the OpenMP threads of the
        # thread that builds it, and a second live OpenMP team on a small CPU slows both (see run_compute).
        built: Future = Future()
        self._thread = threading.Thread(
            target=self._build_and_run, args=(built,), name="phishlens-vllm", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(built)
        except BaseException:
            self._thread.join(30)
            self._thread = None
            raise

    def _build_and_run(self, built: Future) -> None:
        try:
            self._build_engine()
        except BaseException as e:  # handed to start()
            built.set_exception(e)
            return
        built.set_result(None)
        self._run()

    def _build_engine(self) -> None:
        # Must be set before vLLM reads its env registry (documented CPU recipe).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        # KV-cache size goes in as an engine arg: the legacy VLLM_CPU_KVCACHE_SPACE env var is parsed
        # with int() (a setting of 1.0 GiB became "1.0" and vLLM refused to start) and drops fractions.
        # (CPU only: on a GPU vLLM sizes the cache from gpu_memory_utilization.)
        from vllm.platforms import current_platform

        self._on_cpu = current_platform.is_cpu()
        if self._on_cpu:
            from .onednn import configure_onednn
            from .vllm_cpu_lora import install

            configure_onednn(self.settings)  # before the first primitive: a bounded primitive cache
            install()  # grouped LoRA matmuls instead of vLLM's per-token weight gather (6x faster here)
            _llvmlite_scan_safe()

        kv_cache_bytes = (
            int(self.settings.vllm_kv_cache_gb * (1 << 30)) if current_platform.is_cpu() else None
        )
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import EngineArgs
        from vllm.v1.engine.llm_engine import LLMEngine

        from phishlens.training.contract.base_models import resolve_base

        base = resolve_base(self.settings.base_model)
        self.base_path, self.base_sha256 = str(base.path), base.sha256
        self.tokenizer = AutoTokenizer.from_pretrained(self.base_path)
        args = EngineArgs(
            model=self.base_path,
            dtype=self.settings.dtype,
            max_model_len=self.settings.max_model_len,
            enable_lora=True,
            max_loras=self.max_adapters,
            max_cpu_loras=self.max_adapters,
            max_lora_rank=self.settings.max_lora_rank,
            enable_prefix_caching=True,
            block_size=self.settings.vllm_block_size,  # prefix-cache granularity (tokens)
            kv_cache_memory_bytes=kv_cache_bytes,
            disable_log_stats=True,
            seed=0,
        )
        self._engine = LLMEngine.from_engine_args(args)
        logger.info("vLLM engine up (base %s)", base.name)

    async def close(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None
        self._engine = None

    async def healthy(self) -> bool:
        return (
            self._engine is not None
            and self._thread is not None
            and self._thread.is_alive()
            and self._dead is None
        )

    # -- adapters --------------------------------------------------------------------------
    async def add_adapter(self, adapter: AdapterHandle) -> None:
        from vllm.lora.request import LoRARequest

        # The name carries the load's unique id: vLLM keys prefix-cache blocks by (lora_name, lora_path), so
        # reusing the plain name for a reload of changed weights at the same path would reuse stale K/V.
        req = LoRARequest(
            lora_name=f"{adapter.name}#{adapter.adapter_id}",
            lora_int_id=adapter.adapter_id,
            lora_path=str(adapter.path),
        )
        await self._call(lambda eng: self._add_lora(eng, req))
        self._loras[adapter.adapter_id] = req

    @staticmethod
    def _add_lora(eng: Any, req: Any) -> None:
        if not eng.add_lora(req):
            raise BackendError(f"vLLM refused adapter {req.lora_name}")

    async def remove_adapter(self, adapter: AdapterHandle) -> None:
        self._loras.pop(adapter.adapter_id, None)
        await self._call(lambda eng: eng.remove_lora(adapter.adapter_id))

    async def run_compute(self, fn: Callable[[], Any]) -> Any:
        """On a CPU host: on the engine thread, between steps. Torch forwards in a second thread while
        this one holds its OpenMP team ran 30-60 % slower on 2 cores (more spinning threads than
        cores), and when both are CPU-bound serialising them costs nothing. On a GPU: a worker thread."""
        if not self._on_cpu:
            return await super().run_compute(fn)
        if self._dead is not None or self._thread is None:
            raise BackendError("vLLM engine is not running")
        return await self._on_engine_thread(lambda eng: fn())

    async def _on_engine_thread(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(engine)` on the engine thread, between steps, and await its result (errors as raised)."""
        fut: Future = Future()
        self._inbox.put(("call", fn, fut))
        return await asyncio.wrap_future(fut)

    async def _call(self, fn: Callable[[Any], Any]) -> Any:
        """`_on_engine_thread` for engine commands: vLLM's own errors become BackendError."""
        try:
            return await self._on_engine_thread(fn)
        except BackendError:
            raise
        except Exception as e:  # vLLM raises ValueError/RuntimeError for bad adapters
            raise BackendError(f"vLLM: {e}") from e

    # -- scoring ---------------------------------------------------------------------------
    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self._dead is not None or self._thread is None:
            raise BackendError("vLLM engine is not running")
        if not requests:
            return []
        fut: Future = Future()
        self._inbox.put(("score", _Pending(requests, fut)))
        return await asyncio.wrap_future(fut)

    def _params(self, label_ids: Sequence[int]) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=1, temperature=0.0, logprob_token_ids=list(label_ids), detokenize=False
        )

    def _submit(self, pending: _Pending, inflight: dict[str, tuple[_Pending, int]]) -> None:
        from vllm.inputs import TokensPrompt

        eng = self._engine
        for i, r in enumerate(pending.requests):
            rid = f"pl-{next(self._ids)}"
            lora = None
            if r.adapter is not None:
                lora = self._loras.get(r.adapter.adapter_id)
                if lora is None:
                    raise BackendError(f"adapter {r.adapter.name} is not loaded in the engine")
            eng.add_request(
                rid,
                TokensPrompt(prompt_token_ids=list(r.prompt_ids)),
                self._params(r.label_token_ids),
                lora_request=lora,
            )
            inflight[rid] = (pending, i)

    def _collect(self, outputs: list[Any], inflight: dict[str, tuple[_Pending, int]]) -> None:
        for out in outputs:
            if not out.finished or out.request_id not in inflight:
                continue
            pending, i = inflight.pop(out.request_id)
            req = pending.requests[i]
            lp = out.outputs[0].logprobs[0]
            try:
                values = tuple(float(lp[t].logprob) for t in req.label_token_ids)
            except (KeyError, TypeError) as e:
                pending.error = BackendError(f"vLLM returned no logprob for a label token ({e})")
                values = tuple(float("nan") for _ in req.label_token_ids)
            pending.results[i] = ScoreResult(values, len(out.prompt_token_ids or req.prompt_ids))
            if len(pending.results) == len(pending.requests) and not pending.future.done():
                if pending.error is not None:
                    pending.future.set_exception(pending.error)
                else:
                    pending.future.set_result([pending.results[k] for k in range(len(pending.requests))])

    def _fail_all(self, inflight: dict[str, tuple[_Pending, int]], err: BaseException) -> None:
        for pending, _ in list(inflight.values()):
            if not pending.future.done():
                pending.future.set_exception(BackendError(f"vLLM step failed: {err}"))
        inflight.clear()

    def _run(self) -> None:
        inflight: dict[str, tuple[_Pending, int]] = {}
        eng = self._engine
        while not self._stop.is_set():
            # Block only when the engine has nothing to do; otherwise drain without waiting.
            block = not eng.has_unfinished_requests()
            items = []
            try:
                items.append(
                    self._inbox.get(block=block, timeout=0.5 if block else None)
                    if block
                    else self._inbox.get_nowait()
                )
                while True:
                    items.append(self._inbox.get_nowait())
            except queue.Empty:
                pass
            for item in items:
                if item is None:
                    continue
                if item[0] == "call":
                    _, fn, fut = item
                    try:
                        fut.set_result(fn(eng))
                    except BaseException as e:  # handed to the awaiting coroutine
                        fut.set_exception(e)
                else:
                    pending = item[1]
                    try:
                        self._submit(pending, inflight)
                    except BaseException as e:
                        # Abort what was already added for this call, then fail it.
                        ids = [rid for rid, (p, _) in inflight.items() if p is pending]
                        for rid in ids:
                            inflight.pop(rid)
                        if ids:
                            eng.abort_request(ids)
                        pending.future.set_exception(
                            e if isinstance(e, BackendError) else BackendError(str(e))
                        )
            if eng.has_unfinished_requests():
                try:
                    self._collect(eng.step(), inflight)
                except Exception as e:  # an engine fault fails the requests in flight, not the server
                    logger.exception("vLLM step failed")
                    self._fail_all(inflight, e)
        self._fail_all(inflight, RuntimeError("engine stopped"))
