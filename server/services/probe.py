"""POST /v1/probe: hidden-state probes and the logit lens for one input (DESIGN.md §5).

The serving backend (usually vLLM) does not expose hidden states, so this service keeps its own
transformers copy of the base model, loaded on first use, and loads each adapter into it from the
same bundle the backend serves (same weights: the registry checked the base hash). Requests run
one at a time per thread and are capped by ``probe_max_concurrency`` (429 past it). Probe traffic
is never reported to classification metrics or to the drift / feedback observers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

from phishlens.explain.loading import LOAD_LOCK
from phishlens.explain.probes import ProbeError, ProbeSet

from ..errors import BackendFailure, Overloaded, PayloadTooLarge
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeOutcome:
    adapter: str
    adapter_sha256: str
    layers: list[str]  # layer.{i}.resid_post
    probes: dict[str, list[Any]]  # probe name → per layer P(positive) or {class: p}
    probe_accuracy: dict[str, list[float]]  # held-out accuracy per layer, from the bundle
    logit_lens: list[float]  # calibrated P(phishing) per layer; the last equals the served score
    p_phishing: float
    label: str
    uncertain: bool
    truncated: bool
    n_prompt_tokens: int


class HFProbeModel:
    """The lazily loaded transformers copy of the base model with the registry's adapters in it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokenizer: Any = None
        self.base_sha256 = ""
        self.model: Any = None
        self._adapters: dict[str, str] = {}  # bundle sha256 → peft adapter name
        self._probes: dict[str, ProbeSet | None] = {}  # bundle sha256 → probes (None: bundle has none)
        self.lock = threading.Lock()  # one forward at a time; adapter loading mutates modules

    def _load_base(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from phishlens.training.base_models import resolve_base

        base = resolve_base(self.settings.base_model)
        dtype = torch.float32 if self.settings.dtype == "auto" else getattr(torch, self.settings.dtype)
        with LOAD_LOCK:
            self.tokenizer = AutoTokenizer.from_pretrained(str(base.path))
            self.model = AutoModelForCausalLM.from_pretrained(str(base.path), dtype=dtype).eval()
        self.base_sha256 = base.sha256
        logger.info("probe service loaded base %s", base.name)

    def activate(self, entry: AdapterEntry, live: set[str]) -> None:
        """Make ``entry``'s adapter the active one (loading it on first use); forget unloaded ones."""
        if self.model is None:
            self._load_base()
        if entry.manifest.base_model.sha256 != self.base_sha256:
            raise BackendFailure(f"adapter {entry.name} was trained on another base than the probe model")
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
                self._probes.pop(stale, None)
            except Exception:  # noqa: BLE001 - a leftover adapter only costs memory
                logger.warning("could not free a stale probe adapter")

    def _load_adapter(self, entry: AdapterEntry, name: str) -> None:
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(entry.bundle.path), adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(entry.bundle.path), adapter_name=name,
                                                   is_trainable=False).eval()

    def probes_of(self, entry: AdapterEntry) -> ProbeSet | None:
        if entry.sha256 not in self._probes:
            extras = entry.manifest.extras
            ps = None
            if "probes" in extras:
                try:
                    ps = ProbeSet.load(entry.bundle.path, extras["probes"], extras.get("probes_index", "probes.json"))
                except ProbeError as e:
                    raise BackendFailure(f"adapter {entry.name}: {e}") from e
            self._probes[entry.sha256] = ps
        return self._probes[entry.sha256]

    def run(self, entry: AdapterEntry, text: str, live: set[str]) -> ProbeOutcome:
        from phishlens.explain.hidden import collect_hidden
        from phishlens.explain.logit_lens import LogitLens

        m = entry.manifest
        enc = entry.encoder.encode(text)
        with self.lock:
            self.activate(entry, live)
            probes = self.probes_of(entry)
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            hidden = collect_hidden(self.model, [enc.ids], pad)
            curve = LogitLens.of(self.model, m.label_token_ids).probabilities(hidden.last, m.calibration.temperature)[0]
        outputs: dict[str, list[Any]] = {}
        accuracy: dict[str, list[float]] = {}
        if probes is not None:
            try:
                outputs = probes.apply(hidden, 0)
            except ProbeError as e:
                raise BackendFailure(f"adapter {entry.name}: {e}") from e
            accuracy = {n: p.accuracy for n, p in probes.probes.items()}
        p = float(curve[-1])
        # label and uncertain band as /v1/classify decides them from the same calibrated probability
        cal = m.calibration
        label = "phishing" if p >= cal.threshold else "legitimate"
        uncertain = cal.uncertain_low <= p <= cal.uncertain_high
        return ProbeOutcome(entry.name, entry.sha256, hidden.layers, outputs, accuracy,
                            [float(v) for v in curve], p, label, uncertain, enc.truncated, len(enc.ids))

    def close(self) -> None:
        self.model = None
        self._adapters.clear()
        self._probes.clear()


class ProbeService:
    def __init__(self, registry: AdapterRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.engine = HFProbeModel(settings)
        self.inflight = 0  # single event loop: no lock needed for the counter

    async def probe(self, text: str, adapter: str | None = None) -> ProbeOutcome:
        if len(text) > self.settings.max_chars:
            raise PayloadTooLarge(f"input has {len(text)} characters; the limit is {self.settings.max_chars}")
        if self.inflight >= self.settings.probe_max_concurrency:
            raise Overloaded(f"{self.inflight} probe request(s) running (limit {self.settings.probe_max_concurrency}); "
                             "retry shortly")
        self.inflight += 1
        try:
            with self.registry.lease([adapter]) as (entry,):
                live = {e.sha256 for e in self.registry.list()}
                try:
                    return await asyncio.to_thread(self.engine.run, entry, text, live)
                except BackendFailure:
                    raise
                except Exception as e:  # loading or forward failures are engine failures, not 500s
                    logger.exception("probe forward failed")
                    raise BackendFailure(f"probe model failed: {type(e).__name__}") from e
        finally:
            self.inflight -= 1

    def close(self) -> None:
        self.engine.close()
