"""Performance monitoring: label-free estimates (CBPE) from served traffic, and true labels via feedback.

`FeedbackService` is a `ClassificationObserver`: for every served /v1/classify or KServe :predict it adds
each (text, adapter) verdict to that adapter's CBPE window and exports the expected precision and recall
(explain/performance.py has the arithmetic).

`POST /v1/feedback` turns true labels into tp/fp/tn/fn outcomes: a counter per adapter and outcome
(aggregate across replicas in PromQL) and a per-process live precision/recall. The verdicts come from the
request id itself — signed and self-describing (services/request_ids.py) — so any replica holding the shared
`feedback_secrets` accepts feedback for an answer another replica served, also after restarts, and nothing
per request is kept in memory at serving time (DESIGN.md §6a).

Feedback is idempotent per replica: a label already recorded for a (request, text, adapter) is a
`duplicate`; a different one is a `conflict` and ignored (the first label wins). The `LabelLedger` behind
this is the one in-memory part: bounded by age and size, it only remembers labels this replica recorded, so
a retry that lands on another replica counts again (at-least-once across the fleet; see README).
A verdict by an adapter that has since been unloaded or replaced is `stale`: kept, not counted.

With `feedback_state_dir` set, every recorded label is journaled and fsync'd before the answer
(services/feedback_journal.py): the live windows, the outcome counters and the ledger survive a restart,
also after `kill -9`. The CBPE windows are not persisted: served traffic refills them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from phishlens.explain.performance import OUTCOMES, ExpectedWindow, Outcome, OutcomeWindow, outcome

from ..errors import PhishlensError, ValidationFailed
from ..metrics import Metrics
from ..registry import AdapterRegistry
from ..settings import Settings
from .classify import ClassifyOutcome
from .feedback_journal import AdapterSnapshot, FeedbackJournal, JournalEntry, JournalItem, Replay
from .request_ids import RequestIdCodec, RequestIdRejected, SignedRequest, SignedVerdict

logger = logging.getLogger(__name__)
Label = Literal["phishing", "legitimate"]
Status = Literal["recorded", "duplicate", "conflict", "stale"]
VerdictKey = tuple[int, str]  # (text index, adapter name)


class RequestNotFound(PhishlensError):
    type = "request_not_found"


@dataclass
class _Entry:
    expires: float
    labels: dict[VerdictKey, str]  # feedback already recorded on this replica


class LabelLedger:
    """request (its id's MAC) → labels recorded here, bounded by age and by total labels (oldest first).

    Every entry lives the same TTL from its first label, so insertion order is expiry order: eviction only
    ever pops the front. An entry outlives its id (which expires `ttl_s` after it was *issued*).
    """

    def __init__(self, ttl_s: float, max_items: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._items = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def items(self) -> int:
        return self._items

    def get(self, key: bytes) -> dict[VerdictKey, str]:
        """The labels recorded for a request (empty when none or forgotten)."""
        self._evict()
        entry = self._entries.get(key)
        return dict(entry.labels) if entry else {}

    def add(self, key: bytes, labels: dict[VerdictKey, str], expires: float | None = None) -> float | None:
        """Remember labels (the first of each key stands); the entry's expiry (`expires` when replayed)."""
        if not labels:
            return None
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(self.clock() + self.ttl_s if expires is None else expires, {})
        new = {k: v for k, v in labels.items() if k not in entry.labels}
        entry.labels.update(new)
        self._items += len(new)
        self._evict()
        return entry.expires

    def entries(self) -> list[tuple[bytes, float, dict[VerdictKey, str]]]:
        """(key, expiry, labels) of every live entry, oldest first."""
        self._evict()
        return [(k, e.expires, dict(e.labels)) for k, e in self._entries.items()]

    def _evict(self) -> None:
        now = self.clock()
        while self._entries:
            first = next(iter(self._entries.values()))
            if first.expires > now and self._items <= self.max_items:
                break
            _, gone = self._entries.popitem(last=False)
            self._items -= len(gone.labels)


@dataclass(frozen=True)
class LabelIn:
    """A true label for text `index` of a served request; `adapter` None: every adapter that scored it."""

    index: int
    label: Label
    adapter: str | None = None


@dataclass(frozen=True)
class FeedbackItem:
    index: int
    adapter: str
    label: str
    predicted: str
    outcome: Outcome
    status: Status


@dataclass(frozen=True)
class FeedbackReport:
    request_id: str
    items: list[FeedbackItem]

    def count(self, status: Status) -> int:
        return sum(1 for i in self.items if i.status == status)


@dataclass
class _AdapterState:
    sha256: str
    expected: ExpectedWindow
    live: OutcomeWindow
    totals: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))


class FeedbackService:
    """CBPE windows, signed-id verification and feedback recording (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        registry: AdapterRegistry,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.clock = clock
        self.ids = RequestIdCodec.from_secrets(settings.feedback_secrets)
        self.ledger = LabelLedger(settings.feedback_ttl_s, settings.feedback_max_items, clock)
        self.journal = FeedbackJournal(settings.feedback_state_dir)
        self._state: dict[str, _AdapterState] = {}

    # ---- lifecycle (durable state) -----------------------------------------------------------------
    def open(self) -> None:
        """Restore the journaled state (windows, counters, ledger) and compact the journal."""
        replay = self.journal.open()
        restored = self._apply(replay)
        if self.journal.enabled:
            self._compact()  # also drops a torn tail, so the next append starts on a fresh line
        if restored:
            logger.info(
                "feedback state restored from %s: %d label(s) counted for %s",
                self.journal.path,
                restored,
                ", ".join(sorted(self._state)),
            )

    def close(self) -> None:
        if self.journal.enabled:
            self._compact()
        self.journal.close()

    def _apply(self, replay: Replay) -> int:
        loaded = {e.name: e.sha256 for e in self.registry.list()}
        for name, snap in replay.adapters.items():
            state = self._state_for(name, snap.sha256)
            for o in snap.live:
                state.live.add(o)  # type: ignore[arg-type]
            for o, n in snap.totals.items():
                state.totals[o] += n  # type: ignore[index]
        for e in replay.entries:
            for i in e.items:
                if i.outcome is not None and i.sha256 is not None:
                    state = self._state_for(i.adapter, i.sha256)
                    state.live.add(i.outcome)  # type: ignore[arg-type]
                    state.totals[i.outcome] += 1  # type: ignore[index]
            self.ledger.add(e.mac, {(i.index, i.adapter): i.label for i in e.items}, e.expires)
        for name in [n for n, st in self._state.items() if loaded.get(n) != st.sha256]:
            del self._state[name]  # unloaded or replaced since: its labels no longer describe what serves
        restored = 0
        for name, state in self._state.items():
            if self.metrics:
                for o, n in state.totals.items():
                    if n:
                        self.metrics.feedback.labels(adapter=name, outcome=o).inc(n)
            restored += sum(state.totals.values())
            self._export_live(name)
        return restored

    def _compact(self) -> None:
        snaps = {
            n: AdapterSnapshot(st.sha256, dict(st.totals), list(st.live)) for n, st in self._state.items()
        }
        entries = [
            JournalEntry(k, exp, [JournalItem(i, a, lab) for (i, a), lab in labels.items()])
            for k, exp, labels in self.ledger.entries()
        ]
        self.journal.compact(snaps, entries)

    # ---- ClassificationObserver ------------------------------------------------------------------
    def observe(self, texts: Sequence[str], outcome: ClassifyOutcome) -> None:
        """Add the verdicts to the CBPE windows (O(verdicts), no I/O; the request id carries the rest)."""
        touched: set[str] = set()
        for r in outcome.results:
            state = self._state_for(r.adapter, r.adapter_sha256)
            state.expected.add(r.p_phishing, r.label == "phishing")
            touched.add(r.adapter)
        for name in touched:
            self._export_expected(name)

    # ---- feedback ----------------------------------------------------------------------------------
    def record(self, request_id: str, labels: Sequence[LabelIn]) -> FeedbackReport:
        """Apply true labels to a served request; all-or-nothing validation, then per-verdict statuses."""
        signed = self._open(request_id)
        verdicts = {(v.index, v.adapter): v for v in signed.verdicts}
        targets = self._targets(verdicts, labels)
        seen = self.ledger.get(signed.mac)
        loaded = {e.name: e.sha256 for e in self.registry.list()}
        self._prune(loaded)
        items: list[FeedbackItem] = []
        touched: set[str] = set()
        noted: dict[VerdictKey, str] = {}
        for key, label in targets.items():
            index, adapter = key
            served = verdicts[key]
            o = outcome(served.predicted == "phishing", label == "phishing")
            previous = seen.get(key)
            status: Status
            if previous is not None:
                status = "duplicate" if previous == label else "conflict"
            elif loaded.get(adapter) != served.adapter_sha256:
                status = "stale"
                noted[key] = label
            else:
                status = "recorded"
                noted[key] = label
                state = self._state_for(adapter, served.adapter_sha256)
                state.live.add(o)
                state.totals[o] += 1
                if self.metrics:
                    self.metrics.feedback.labels(adapter=adapter, outcome=o).inc()
                touched.add(adapter)
            items.append(FeedbackItem(index, adapter, label, served.predicted, o, status))
        expires = self.ledger.add(signed.mac, noted)
        if noted and expires is not None and self.journal.enabled:
            counted = {(i.index, i.adapter): i for i in items if i.status == "recorded"}
            self.journal.append(
                JournalEntry(
                    signed.mac,
                    expires,
                    [
                        JournalItem(
                            index,
                            adapter,
                            label,
                            verdicts[(index, adapter)].adapter_sha256,
                            counted[(index, adapter)].outcome,
                        )
                        if (index, adapter) in counted
                        else JournalItem(index, adapter, label)
                        for (index, adapter), label in noted.items()
                    ],
                )
            )
            if self.journal.records > 2 * len(self.ledger) + 1000:  # bounded file: about what it must hold
                self._compact()
        for name in touched:
            self._export_live(name)
        return FeedbackReport(request_id, items)

    def _open(self, request_id: str) -> SignedRequest:
        """Verify the id's signature and age; 404 `request_not_found` with the reason otherwise."""
        try:
            signed = self.ids.open(request_id)
        except RequestIdRejected as e:
            raise RequestNotFound(f"unknown request id: {e}") from None
        age = self.clock() - signed.issued
        if age > self.settings.feedback_ttl_s:
            raise RequestNotFound(
                f"expired request id: answered {age:.0f} s ago; feedback is accepted for "
                f"{self.settings.feedback_ttl_s:g} s after a /v1/classify answer"
            )
        return signed

    @staticmethod
    def _targets(
        verdicts: dict[VerdictKey, SignedVerdict], labels: Sequence[LabelIn]
    ) -> dict[VerdictKey, str]:
        """(index, adapter) → true label, in request order; 422 for a text or adapter the request lacks."""
        by_index: dict[int, list[str]] = {}
        for index, adapter in verdicts:
            by_index.setdefault(index, []).append(adapter)
        targets: dict[tuple[int, str], str] = {}
        for k, lab in enumerate(labels):
            adapters = by_index.get(lab.index)
            if adapters is None:
                raise ValidationFailed(
                    f"labels[{k}].index: the request has no text {lab.index} (it had {len(by_index)})"
                )
            if lab.adapter is not None:
                if lab.adapter not in adapters:
                    raise ValidationFailed(
                        f"labels[{k}].adapter: text {lab.index} was not scored by "
                        f"{lab.adapter!r} (it was by {sorted(adapters)})"
                    )
                adapters = [lab.adapter]
            for a in adapters:
                if targets.setdefault((lab.index, a), lab.label) != lab.label:
                    raise ValidationFailed(
                        f"labels[{k}]: contradicts an earlier label for text {lab.index} "
                        f"and adapter {a!r} in this request"
                    )
        return targets

    # ---- per-adapter state and metrics -------------------------------------------------------------
    def _state_for(self, name: str, sha256: str) -> _AdapterState:
        state = self._state.get(name)
        if state is None or state.sha256 != sha256:  # a replaced bundle starts from empty windows
            state = _AdapterState(
                sha256,
                ExpectedWindow(self.settings.performance_window, self._calibration_prior(name, sha256)),
                OutcomeWindow(self.settings.feedback_window),
            )
            self._state[name] = state
        return state

    def _calibration_prior(self, name: str, sha256: str) -> float | None:
        """The prior the adapter's probabilities are calibrated under (its drift reference), so CBPE can
        follow a change of prevalence; None (plain CBPE) for a bundle without a reference profile."""
        from phishlens.explain.reference import calibration_prior

        try:
            entry = self.registry.get(name)
        except PhishlensError:
            return None
        fname = entry.manifest.extras.get("reference")
        if entry.sha256 != sha256 or not fname:
            return None
        return calibration_prior(entry.bundle.path / Path(fname).name)

    def _prune(self, loaded: dict[str, str]) -> None:
        """Drop windows of adapters unloaded since (the registry already dropped their series)."""
        for name in [n for n in self._state if n not in loaded]:
            del self._state[name]

    def _export_expected(self, name: str) -> None:
        if not self.metrics:
            return
        state = self._state[name]
        c = state.expected.confusion
        self.metrics.expected_precision.labels(adapter=name).set(c.precision)
        self.metrics.expected_recall.labels(adapter=name).set(c.recall)
        self.metrics.expected_window_texts.labels(adapter=name).set(len(state.expected))

    def _export_live(self, name: str) -> None:
        if not self.metrics:
            return
        c = self._state[name].live.confusion
        self.metrics.live_precision.labels(adapter=name).set(c.precision)
        self.metrics.live_recall.labels(adapter=name).set(c.recall)

    def expected(self, name: str) -> tuple[float, float, int]:
        """(expected precision, expected recall, window size) of an adapter; NaNs before any traffic."""
        state = self._state.get(name)
        if state is None:
            return math.nan, math.nan, 0
        c = state.expected.confusion
        return c.precision, c.recall, len(state.expected)
