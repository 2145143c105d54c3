"""POST /v1/probe: hidden-state probes and the logit lens for one input (DESIGN.md §5).

The serving backend (usually vLLM) does not expose hidden states, so this service runs on the
server's transformers copy of the base model (`HFReplica`, loaded on first use, shared with the
explain service), with each adapter loaded from the same bundle the backend serves. Requests run
one at a time per thread and are capped by ``probe_max_concurrency`` (429 past it). Probe traffic
is never reported to classification metrics or to the drift / feedback observers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from phishlens.explain.probes import ProbeError, ProbeSet
from phishlens.training.contract.pipeline import InputItem, Prepared
from phishlens.training.contract.style import Style

from ..backends.hf_replica import HFReplica
from ..errors import BackendFailure
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .admission import Admission
from .inputs import check_input_caps, prepare_inputs
from .routing import Router
from .verdict import engine_failures, verdict

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
    input: Prepared | None = None  # style, style_source and the model text the probes read


class HFProbeModel:
    """Probes and the logit lens on the server's HF replica (shared with the explain service)."""

    def __init__(self, replica: HFReplica) -> None:
        self.replica = replica
        self.lock = replica.lock
        self._probes: dict[str, ProbeSet | None] = {}  # bundle sha256 → probes (None: bundle has none)
        replica.on_forget.append(lambda sha: self._probes.pop(sha, None))

    def probes_of(self, entry: AdapterEntry) -> ProbeSet | None:
        if entry.sha256 not in self._probes:
            extras = entry.manifest.extras
            ps = None
            if "probes" in extras:
                try:
                    ps = ProbeSet.load(
                        entry.bundle.path, extras["probes"], extras.get("probes_index", "probes.json")
                    )
                except ProbeError as e:
                    raise BackendFailure(f"adapter {entry.name}: {e}") from e
            self._probes[entry.sha256] = ps
        return self._probes[entry.sha256]

    def run(self, entry: AdapterEntry, text: str, style: Style, live: set[str]) -> ProbeOutcome:
        from phishlens.explain.hidden import collect_hidden
        from phishlens.explain.logit_lens import LogitLens

        m = entry.manifest
        enc = entry.encoder.encode(text, style)
        with self.lock:
            model = self.replica.activate(entry, live)
            probes = self.probes_of(entry)
            tok = self.replica.tokenizer
            pad = tok.pad_token_id if tok.pad_token_id is not None else 0
            hidden = collect_hidden(model, [enc.ids], pad)
            curve = LogitLens.of(model, m.label_token_ids).probabilities(
                hidden.last, m.calibration.temperature
            )[0]
        outputs: dict[str, list[Any]] = {}
        accuracy: dict[str, list[float]] = {}
        if probes is not None:
            try:
                outputs = probes.apply(hidden, 0)
            except ProbeError as e:
                raise BackendFailure(f"adapter {entry.name}: {e}") from e
            accuracy = {n: p.accuracy for n, p in probes.probes.items()}
        p = float(curve[-1])
        v = verdict(p, m.calibration)  # as /v1/classify decides from the same calibrated probability
        return ProbeOutcome(
            entry.name,
            entry.sha256,
            hidden.layers,
            outputs,
            accuracy,
            [float(x) for x in curve],
            p,
            v.label,
            v.uncertain,
            enc.truncated,
            len(enc.ids),
        )

    def close(self) -> None:
        self._probes.clear()


class ProbeService:
    def __init__(
        self, registry: AdapterRegistry, settings: Settings, replica: HFReplica | None = None
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.replica = replica or HFReplica(settings)
        self.engine = HFProbeModel(self.replica)
        self.admission = Admission(lambda: settings.probe_max_concurrency, "probe requests running")
        self.router = Router(registry, settings)  # adapter "auto": the adapter routed for the input's style

    @property
    def inflight(self) -> int:
        return self.admission.count

    async def probe(self, item: InputItem, adapter: str | None = None) -> ProbeOutcome:
        """Probes and logit lens over the text the adapter's input pipeline makes of `item`."""
        check_input_caps([item], self.settings)
        with self.admission.admit(), self.registry.lease([await self.router.name(item, adapter)]) as (entry,):
            prepared = (await asyncio.to_thread(prepare_inputs, [item], [entry]))[0][0]
            live = {e.sha256 for e in self.registry.list()}
            with engine_failures("probe model", any_exception=True):
                out = await asyncio.to_thread(self.engine.run, entry, prepared.text, prepared.style, live)
            return dataclasses.replace(out, input=prepared)

    def close(self) -> None:
        self.engine.close()
        self.replica.close()
