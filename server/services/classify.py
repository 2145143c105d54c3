"""Classification: caps, admission control, prompt encoding, one backend call, calibration (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

from phishlens.training.contract.pipeline import EmailSummary, InputItem, Prepared

from ..backends.base import Backend, ScoreRequest, ScoreResult
from ..errors import BackendFailure
from ..metrics import Metrics
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .admission import Admission
from .inputs import check_input_caps, prepare_inputs
from .request_ids import RequestIdCodec, SignedVerdict
from .verdict import calibrate, engine_failures

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """One (text, adapter) verdict, calibrated as served."""

    index: int  # position of the text in the request
    label: str  # "phishing" | "legitimate"
    p_phishing: float
    uncertain: bool
    truncated: bool
    adapter: str
    adapter_sha256: str
    n_prompt_tokens: int
    style: str = ""  # "email" | "sms" | "url" as the adapter's pipeline classified the input
    style_source: str = ""  # "given" (typed input) | "detected" (plain string)
    text: str = ""  # exactly what the prompt template wrapped
    email: EmailSummary | None = None  # what the parser found, for e-mail inputs


@dataclass(frozen=True)
class ClassifyOutcome:
    results: list[Classification]  # text-major: for each text, one result per adapter in request order
    n_texts: int
    prompt_tokens: int
    request_id: str = ""


class ClassificationObserver(Protocol):
    """Sees served business traffic only (never explain, probe or readiness self-tests): drift, feedback.

    Called on the event loop after the response is computed; must not block (hand heavy work to a thread).
    An observer that raises is logged and skipped: monitoring never fails a classification.
    """

    def observe(self, texts: Sequence[str], outcome: ClassifyOutcome) -> None: ...


@dataclass(frozen=True)
class GoldenReport:
    ok: bool
    failures: list[str]  # "adapter: expected X for example i, got Y (p=...)"


class ClassifyService:
    def __init__(self, backend: Backend, registry: AdapterRegistry, settings: Settings,
                 metrics: Metrics | None = None) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.admission = Admission(lambda: settings.max_queue, "texts in flight",
                                   metrics.inflight_texts if metrics else None)  # texts admitted, not answered
        self.observers: list[ClassificationObserver] = []
        self.request_ids = RequestIdCodec.from_secrets(settings.feedback_secrets)  # signed, for feedback
        self._golden: dict[tuple[int, str], GoldenReport] = {}  # (adapter id, sha256) → cached report

    @property
    def inflight(self) -> int:
        """Texts admitted and not yet answered."""
        return self.admission.count

    def check_caps(self, items: Sequence[InputItem], field: str = "input") -> None:
        check_input_caps(items, self.settings, field)

    async def classify(self, items: Sequence[InputItem], adapters: Sequence[str | None] = (None,),
                       field: str = "input") -> ClassifyOutcome:
        """Every input through every adapter's input pipeline, then scored (text-major order) in one
        backend call. `field` names the request field in error messages (input, instances)."""
        self.check_caps(items, field)
        names = list(adapters) or [None]
        n = len(items)
        with self.admission.admit(n):
            with self.registry.lease(names) as entries:
                prepared = await asyncio.to_thread(prepare_inputs, items, entries, field)
                outcome = await self._run(prepared, entries)
        outcome = ClassifyOutcome(outcome.results, outcome.n_texts, outcome.prompt_tokens,
                                  self._request_id(outcome.results))
        if self.metrics:
            for r in outcome.results:
                self.metrics.observe_classification(r.adapter, r.label, r.p_phishing)
        texts = [row[0].text for row in prepared]  # what the model saw (drift compares it with training)
        for obs in self.observers:
            try:
                obs.observe(texts, outcome)
            except Exception:  # noqa: BLE001 - monitoring must never fail a served request
                logger.exception("classification observer %s failed", type(obs).__name__)
        return outcome

    def _request_id(self, results: Sequence[Classification]) -> str:
        """A signed id carrying every verdict, so feedback is accepted by any replica (request_ids.py)."""
        return self.request_ids.issue([SignedVerdict(r.index, r.adapter, r.adapter_sha256, r.p_phishing, r.label)
                                       for r in results], int(time.time()))

    async def golden_check(self) -> GoldenReport:
        """Each loaded adapter must label its manifest's golden examples as expected (not counted in metrics)."""
        failures: list[str] = []
        with self.registry.lease([e.name for e in self.registry.list()]) as entries:
            live = {(e.handle.adapter_id, e.sha256) for e in entries}
            self._golden = {k: v for k, v in self._golden.items() if k in live}
            for e in entries:
                key = (e.handle.adapter_id, e.sha256)
                if key not in self._golden:
                    self._golden[key] = await self._golden_one(e)
                failures += self._golden[key].failures
        return GoldenReport(not failures, failures)

    async def _golden_one(self, entry: AdapterEntry) -> GoldenReport:
        golden = entry.manifest.golden
        if not golden:
            return GoldenReport(True, [])
        try:
            out = await self._run([[_as_given(g.text)] for g in golden], [entry])
        except BackendFailure as e:
            return GoldenReport(False, [f"{entry.name}: golden check failed: {e.message}"])
        fails = [f"{entry.name}: golden example {r.index} expected {g.label}, got {r.label} (p={r.p_phishing:.3f})"
                 for g, r in zip(golden, out.results) if r.label != g.label]
        return GoldenReport(not fails, fails)

    async def _run(self, prepared: Sequence[Sequence[Prepared]],
                   entries: Sequence[AdapterEntry]) -> ClassifyOutcome:
        """prepared[i][j]: input i as adapter j's pipeline prepared it."""
        encoded = await asyncio.to_thread(_encode, prepared, entries)
        requests = [ScoreRequest(enc.ids, e.handle, e.manifest.label_token_ids)
                    for enc_row in encoded for enc, e in zip(enc_row, entries)]
        with engine_failures("inference engine"):
            scores: list[ScoreResult] = await self.backend.score(requests)
        if len(scores) != len(requests):
            raise BackendFailure(f"inference engine returned {len(scores)} results for {len(requests)} prompts")
        results = []
        for k, (req, sc) in enumerate(zip(requests, scores)):
            i, j = divmod(k, len(entries))
            e = entries[j]
            p, label, uncertain = calibrate(sc.label_logprobs, e.manifest.calibration)
            prep = prepared[i][j]
            results.append(Classification(i, label, p, uncertain, encoded[i][j].truncated, e.name, e.sha256,
                                          sc.n_prompt_tokens, prep.style, prep.style_source, prep.text,
                                          prep.email))
        return ClassifyOutcome(results, len(prepared), sum(r.n_prompt_tokens for r in results))



def _as_given(text: str) -> Prepared:
    """A text already in model form (golden examples are training rows): scored as is."""
    return Prepared("", "given", text)


def _encode(prepared: Sequence[Sequence[Prepared]], entries: Sequence[AdapterEntry]) -> list[list]:
    """encoded[i][j]: input i's text for adapter j through j's encoder (shared when adapters share an
    encoder spec and their pipelines produced the same texts)."""
    cache: dict[tuple[str, int, float, tuple[str, ...]], list] = {}
    cols = []
    for j, e in enumerate(entries):
        texts = tuple(row[j].text for row in prepared)
        spec = (e.encoder.template, e.encoder.max_text_tokens, e.encoder.head_fraction, texts)
        if spec not in cache:
            cache[spec] = e.encoder.encode_many(list(texts))
        cols.append(cache[spec])
    return [[col[i] for col in cols] for i in range(len(prepared))]
