"""Explanations: SHAP with its own admission limit and metrics (DESIGN.md §5).

shap runs in a worker thread (`phishlens.explain.attribute`) and hands each round of perturbations
to one of two engines (setting ``explain_engine``):

* ``prefix_tree`` (what ``auto`` picks without a GPU): the server's transformers copy of the model
  (`HFReplica`, shared with /v1/probe) through `PrefixTreeScorer`, which keeps every computed
  token's K/V for the explanation and runs only what follows each perturbation's longest cached
  prefix. On a CPU this is the fastest exact path (benchmarks/explain.py); the replica matches the
  served scores to ≤ 1e-4.
* ``backend``: the round is encoded and bridged to the event loop as ONE `backend.score` call, so
  vLLM schedules it together and its (block-granular) prefix cache shares the template prefix.
  No second copy of the weights: what ``auto`` picks where a GPU is present.

This path never goes through `ClassifyService.classify`: explain traffic stays out of the
classification counters, the observers (drift, feedback) and the text queue; it uses the same
encoding + label log-probs + `calibrate` steps as the golden self-test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phishlens.explain.attribution import (
    Attribution,
    AttributionError,
    Granularity,
    TooManyFeatures,
    attribute,
)
from phishlens.explain.prefix_tree import PrefixTreeScorer
from phishlens.training.contract.pipeline import InputItem, Prepared
from phishlens.training.contract.style import Style

from ..backends.base import Backend, BackendError, ScoreRequest
from ..backends.hf_replica import HFReplica
from ..errors import PayloadTooLarge, PhishlensError, ValidationFailed
from ..metrics import Metrics
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .admission import Admission
from .inputs import check_input_caps, prepare_inputs
from .routing import Router
from .verdict import calibrate, engine_failures, verdict

logger = logging.getLogger(__name__)
_warm_lock = threading.Lock()
_warmed = False


class _Cancelled(Exception):
    """The request went away: stop scoring at the next round."""


@dataclass(frozen=True)
class ExplainOutcome:
    id: str
    adapter: str
    adapter_sha256: str
    label: str
    uncertain: bool
    truncated: bool  # the explained text was longer than the adapter's window (head + tail kept)
    attribution: Attribution
    seconds: float
    input: Prepared  # style, style_source and the model text the attributions are over


def resolve_engine(setting: str) -> str:
    """``auto``: the prefix tree on CPU-only hosts (fastest there); the serving backend where a GPU is
    present (the replica is a CPU copy; vLLM batches a round on the GPU without a second copy)."""
    if setting != "auto":
        return setting
    import torch

    return "backend" if torch.cuda.is_available() else "prefix_tree"


def warm_up_once() -> None:
    """Import shap and compile its numba kernels once per process (the first explanation would pay ≈20 s)."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        try:
            from phishlens.explain.attribution import warm_up

            logger.info("explain warm-up done in %.1fs", warm_up())
        except Exception:  # noqa: BLE001 - a failed warm-up only costs the first request time
            logger.exception("explain warm-up failed")
        _warmed = True


class ExplainService:
    def __init__(
        self,
        backend: Backend,
        registry: AdapterRegistry,
        settings: Settings,
        metrics: Metrics | None = None,
        replica: HFReplica | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.replica = replica or HFReplica(settings)
        self.engine = resolve_engine(settings.explain_engine)  # read per request (tests switch it)
        self.admission = Admission(
            lambda: settings.explain_concurrency,
            "explanations running",
            metrics.explain_inflight if metrics else None,
        )
        self.router = Router(registry, settings)  # adapter "auto": the adapter routed for the input's style

    @property
    def running(self) -> int:
        """Explanations admitted and not yet answered."""
        return self.admission.count

    def start_warm_up(self) -> None:
        threading.Thread(target=warm_up_once, name="phishlens-explain-warmup", daemon=True).start()

    def budget(self, max_evals: int | None) -> int:
        s = self.settings
        if max_evals is None:
            return min(s.explain_default_max_evals, s.explain_max_evals)
        if max_evals > s.explain_max_evals:
            raise ValidationFailed(
                f"max_evals={max_evals} is over this server's cap of {s.explain_max_evals}"
            )
        return max_evals

    async def explain(
        self,
        item: InputItem,
        adapter: str | None = None,
        *,
        granularity: Granularity = "word",
        max_evals: int | None = None,
        field: str = "input",
    ) -> ExplainOutcome:
        """Attributions of one input through one adapter, over the text its input pipeline makes of it
        (the words the model saw); 429 past `explain_concurrency` running at once."""
        check_input_caps([item], self.settings, field)
        budget = self.budget(max_evals)
        cancelled = threading.Event()
        start = time.perf_counter()
        with self.admission.admit():
            adapter = await self.router.name(item, adapter, field)
            with self.registry.lease([adapter]) as (entry,):
                prepared = (await asyncio.to_thread(prepare_inputs, [item], [entry], field))[0][0]
                text = prepared.text
                style = prepared.style  # every masked variant is scored as the input's style
                if self.engine == "prefix_tree":
                    score = self._tree(entry, style, asyncio.get_running_loop(), cancelled)
                else:
                    score = self._bridge(entry, style, asyncio.get_running_loop(), cancelled)
                try:
                    with engine_failures("inference engine"):  # BackendError from either engine → 424
                        attr = await asyncio.to_thread(
                            attribute,
                            score,
                            text,
                            entry.encoder.tokenizer,
                            granularity=granularity,
                            max_evals=budget,
                            round_nodes=self.settings.explain_round_nodes,
                            max_features=self.settings.explain_max_features,
                        )
                except asyncio.CancelledError:
                    cancelled.set()  # the worker stops at its next round
                    raise
                except TooManyFeatures as e:
                    raise PayloadTooLarge(str(e)) from e
                except AttributionError as e:
                    raise ValidationFailed(str(e)) from e
                v = verdict(attr.prediction, entry.manifest.calibration)
                truncated = entry.encoder.encode(attr.masked_text, style).truncated
        seconds = time.perf_counter() - start
        if self.metrics:
            self.metrics.explain_latency.labels(granularity=granularity).observe(seconds)
            self.metrics.explain_evaluations.observe(attr.evaluations)
        return ExplainOutcome(
            f"exp-{uuid.uuid4().hex}",
            entry.name,
            entry.sha256,
            v.label,
            v.uncertain,
            truncated,
            attr,
            seconds,
            prepared,
        )

    def _bridge(
        self, entry: AdapterEntry, style: Style, loop: asyncio.AbstractEventLoop, cancelled: threading.Event
    ):
        """score(texts) for the worker thread: encode here, one backend call on the loop, calibrate."""
        label_ids = entry.manifest.label_token_ids
        cal = entry.manifest.calibration

        def score(texts: Sequence[str]) -> np.ndarray:
            if cancelled.is_set():
                raise _Cancelled()
            encoded = entry.encoder.encode_many(texts, style)
            requests = [ScoreRequest(enc.ids, entry.handle, label_ids) for enc in encoded]
            results = asyncio.run_coroutine_threadsafe(self.backend.score(requests), loop).result()
            if len(results) != len(requests):
                raise BackendError(f"{len(results)} results for {len(requests)} prompts")
            self._count_tokens("backend", sum(len(r.prompt_ids) for r in requests), None)
            return np.array([calibrate(r.label_logprobs, cal)[0] for r in results], dtype=np.float64)

        return score

    def _tree(
        self, entry: AdapterEntry, style: Style, loop: asyncio.AbstractEventLoop, cancelled: threading.Event
    ):
        """score(texts) for the worker thread on the HF replica, reusing K/V across this explanation's rounds.

        The forwards run where the backend says heavy work contends least (`Backend.run_compute`).
        """
        label_ids = entry.manifest.label_token_ids
        cal = entry.manifest.calibration
        live = {e.sha256 for e in self.registry.list()}
        state: dict[str, PrefixTreeScorer] = {}

        def forward(prompts: list[list[int]]) -> tuple[np.ndarray, int]:
            with self.replica.lock:  # the active adapter is shared state: hold it for the forwards
                model = self.replica.activate(entry, live)
                if "scorer" not in state:
                    state["scorer"] = PrefixTreeScorer(
                        model,
                        label_ids,
                        chunk_tokens=self.settings.explain_tree_chunk_tokens,
                        max_cached_tokens=self.settings.explain_tree_max_cached_tokens,
                    )
                scorer = state["scorer"]
                before = scorer.stats.computed_tokens
                return scorer.score(prompts), scorer.stats.computed_tokens - before

        def score(texts: Sequence[str]) -> np.ndarray:
            if cancelled.is_set():
                raise _Cancelled()
            prompts = [list(enc.ids) for enc in entry.encoder.encode_many(texts, style)]
            try:
                logprobs, computed = asyncio.run_coroutine_threadsafe(
                    self.backend.run_compute(lambda: forward(prompts)), loop
                ).result()
            except (PhishlensError, BackendError):
                raise
            except Exception as e:  # loading or forward failures are engine failures (424), not 500s
                logger.exception("prefix-tree explain forward failed")
                raise BackendError(f"explain model failed: {type(e).__name__}") from e
            self._count_tokens("prefix_tree", sum(len(p) for p in prompts), computed)
            return np.array([calibrate(row.tolist(), cal)[0] for row in logprobs], dtype=np.float64)

        return score

    def _count_tokens(self, engine: str, prompt: int, computed: int | None) -> None:
        if self.metrics:
            self.metrics.explain_tokens.labels(engine=engine, kind="prompt").inc(prompt)
            if computed is not None:
                self.metrics.explain_tokens.labels(engine=engine, kind="computed").inc(computed)


def explanation_html(out: ExplainOutcome) -> str:
    """The self-contained HTML page for an outcome (title names the adapter and its verdict)."""
    from phishlens.explain.render import render_html

    a = out.attribution
    return render_html(
        a.tokens,
        a.attributions,
        prediction=a.prediction,
        base_value=a.base_value,
        title=f"{out.adapter}: {out.label}",
        subtitle=f"adapter {out.adapter} ({out.adapter_sha256[:12]}), {a.granularity} SHAP "
        f"(partition), {a.evaluations} evaluations of {a.max_evals}",
    )
