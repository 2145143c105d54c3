"""Classification: caps, admission control, prompt encoding, one backend call, calibration (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from phishlens.explain.ood import OodVerdict
from phishlens.training.contract.pipeline import EmailSummary, InputItem, Prepared

from ..backends.base import Backend, ScoreRequest, ScoreResult
from ..errors import BackendFailure, ValidationFailed
from ..metrics import Metrics
from ..registry import AdapterEntry, AdapterRegistry
from ..settings import Settings
from .admission import Admission
from .inputs import Preparer, check_input_caps
from .request_ids import RequestIdCodec, SignedVerdict
from .routing import AUTO, Router
from .verdict import calibrate, engine_failures

if TYPE_CHECKING:  # pragma: no cover
    from .ood import OodService

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
    ood: OodVerdict | None = None  # out-of-distribution flag vs the adapter's reference (None: no reference)


@dataclass(frozen=True)
class ClassifyOutcome:
    results: list[Classification]  # text-major: for each text, one result per adapter in request order
    n_texts: int
    prompt_tokens: int
    request_id: str = ""
    # max_tokens → [n_texts, dim] MiniLM embeddings of the observers' texts, when the OOD flag computed them
    # (the drift monitor reuses them instead of embedding the same texts again)
    embeddings: Mapping[int, np.ndarray] = field(default_factory=dict)


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
    def __init__(
        self,
        backend: Backend,
        registry: AdapterRegistry,
        settings: Settings,
        metrics: Metrics | None = None,
        ood: OodService | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.ood = ood  # per-result OOD flag (settings.ood_enabled); None: results carry no `ood`
        self.router = Router(registry, settings)  # adapter "auto"
        self.admission = Admission(
            lambda: settings.max_queue, "texts in flight", metrics.inflight_texts if metrics else None
        )  # texts admitted, not answered
        self.observers: list[ClassificationObserver] = []
        self.request_ids = RequestIdCodec.from_secrets(settings.feedback_secrets)  # signed, for feedback
        self._golden: dict[tuple[int, str], GoldenReport] = {}  # (adapter id, sha256) → cached report

    @property
    def inflight(self) -> int:
        """Texts admitted and not yet answered."""
        return self.admission.count

    def check_caps(self, items: Sequence[InputItem], field: str = "input") -> None:
        check_input_caps(items, self.settings, field)

    async def classify(
        self, items: Sequence[InputItem], adapters: Sequence[str | None] = (None,), field: str = "input"
    ) -> ClassifyOutcome:
        """Every input through every adapter's input pipeline, then scored (text-major order) in one
        backend call. `field` names the request field in error messages (input, instances).

        The name "auto" routes each input to the adapter `settings.routes` declares for its style (as the
        default adapter's pipeline detects it; typed inputs give it), the default adapter for styles
        without a route; mixed styles go to their adapters in the same backend call (every prompt carries
        its own adapter) and the results keep the input order."""
        self.check_caps(items, field)
        names = list(adapters) or [None]
        if AUTO in names and len(names) > 1:
            raise ValidationFailed(
                f"adapter '{AUTO}' routes each text to one adapter; it cannot be combined "
                "with other adapters in one request"
            )
        n = len(items)
        with self.admission.admit(n), ExitStack() as stack:  # the stack holds the adapter leases
            prep = Preparer(items, field)
            if names == [AUTO]:
                entries = await self.router.entries(prep, stack)  # entries[i]: the adapter for input i
                jobs = [(i, e) for i, e in enumerate(entries)]
            else:
                entries = stack.enter_context(self.registry.lease(names))
                jobs = [(i, e) for i in range(n) for e in entries]
            prepared = await asyncio.to_thread(lambda: [prep(i, e) for i, e in jobs])
            outcome = await self._score(jobs, prepared, n)
            if self.ood is not None:
                outcome = await asyncio.to_thread(self._with_ood, outcome, jobs, prepared)
        outcome = replace(outcome, request_id=self._request_id(outcome.results))
        if self.metrics:
            for r in outcome.results:
                self.metrics.observe_classification(r.adapter, r.label, r.p_phishing)
        texts = _first_texts(jobs, prepared, n)  # what the model saw (drift compares it with training)
        for obs in self.observers:
            try:
                obs.observe(texts, outcome)
            except Exception:  # noqa: BLE001 - monitoring must never fail a served request
                logger.exception("classification observer %s failed", type(obs).__name__)
        return outcome

    def _with_ood(
        self, outcome: ClassifyOutcome, jobs: Sequence[tuple[int, AdapterEntry]], prepared: Sequence[Prepared]
    ) -> ClassifyOutcome:
        """Each result with its OOD verdict; the embeddings of the observers' texts for the drift monitor."""
        assert self.ood is not None
        verdicts, vecs = self.ood.assess([(e, p.text) for (_, e), p in zip(jobs, prepared)])
        results = [replace(r, ood=v) for r, v in zip(outcome.results, verdicts)]
        texts = _first_texts(jobs, prepared, outcome.n_texts)
        emb = {
            mt: np.stack([vecs[(mt, t)] for t in texts])
            for mt in {mt for mt, _ in vecs}
            if all((mt, t) in vecs for t in texts)
        }
        return replace(outcome, results=results, embeddings=emb)

    def _request_id(self, results: Sequence[Classification]) -> str:
        """A signed id carrying every verdict, so feedback is accepted by any replica (request_ids.py)."""
        return self.request_ids.issue(
            [SignedVerdict(r.index, r.adapter, r.adapter_sha256, r.p_phishing, r.label) for r in results],
            int(time.time()),
        )

    async def golden_check(self) -> GoldenReport:
        """Each loaded adapter must label its manifest's golden examples as expected (not counted in
        metrics)."""
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
            out = await self._score(
                [(i, entry) for i in range(len(golden))], [_as_given(g.text) for g in golden], len(golden)
            )
        except BackendFailure as e:
            return GoldenReport(False, [f"{entry.name}: golden check failed: {e.message}"])
        fails = [
            f"{entry.name}: golden example {r.index} expected {g.label}, got {r.label} (p={r.p_phishing:.3f})"
            for g, r in zip(golden, out.results)
            if r.label != g.label
        ]
        return GoldenReport(not fails, fails)

    async def _score(
        self, jobs: Sequence[tuple[int, AdapterEntry]], prepared: Sequence[Prepared], n_texts: int
    ) -> ClassifyOutcome:
        """jobs[k] = (input index, adapter), prepared[k] its text through that adapter's pipeline; one
        backend call for all of them (each prompt carries its adapter), results in job order."""
        encoded = await asyncio.to_thread(_encode, jobs, prepared)
        requests = [
            ScoreRequest(enc.ids, e.handle, e.manifest.label_token_ids) for enc, (_, e) in zip(encoded, jobs)
        ]
        with engine_failures("inference engine"):
            scores: list[ScoreResult] = await self.backend.score(requests)
        if len(scores) != len(requests):
            raise BackendFailure(
                f"inference engine returned {len(scores)} results for {len(requests)} prompts"
            )
        results = []
        for (i, e), prep, enc, sc in zip(jobs, prepared, encoded, scores):
            p, label, uncertain = calibrate(sc.label_logprobs, e.manifest.calibration)
            results.append(
                Classification(
                    i,
                    label,
                    p,
                    uncertain,
                    enc.truncated,
                    e.name,
                    e.sha256,
                    sc.n_prompt_tokens,
                    prep.style,
                    prep.style_source,
                    prep.text,
                    prep.email,
                )
            )
        return ClassifyOutcome(results, n_texts, sum(r.n_prompt_tokens for r in results))


def _as_given(text: str) -> Prepared:
    """A text already in model form (golden examples are training rows): scored as is."""
    return Prepared("", "given", text)


def _first_texts(jobs: Sequence[tuple[int, AdapterEntry]], prepared: Sequence[Prepared], n: int) -> list[str]:
    """Per input, the text its first adapter's pipeline produced (what the observers see)."""
    texts: list[str | None] = [None] * n
    for (i, _), p in zip(jobs, prepared):
        if texts[i] is None:
            texts[i] = p.text
    return [t or "" for t in texts]


def _encode(jobs: Sequence[tuple[int, AdapterEntry]], prepared: Sequence[Prepared]) -> list:
    """encoded[k]: job k's text through its adapter's encoder (each distinct (encoder spec, text) once:
    adapters sharing a template get one encoding)."""
    cache: dict[tuple[str, int, float, str, str], object] = {}
    out = []
    for (_, e), p in zip(jobs, prepared):
        key = (e.encoder.template, e.encoder.max_text_tokens, e.encoder.head_fraction, p.style, p.text)
        if key not in cache:
            # a template that names the style gets the input's (declared or detected; golden rows: detected)
            cache[key] = e.encoder.encode(p.text, p.style or None)
        out.append(cache[key])
    return out
