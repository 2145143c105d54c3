"""Admission control shared by the services: a counter of admitted work against a limit, 429 past it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from ..errors import Overloaded


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class Admission:
    """`with admission.admit(n):` holds n units (texts, requests) while the block runs.

    `limit` is read at each admission (settings may be changed in place, e.g. by tests); `what` names the
    units in the 429 message ("texts in flight"); `gauge` mirrors the count (Prometheus). The services run on
    one event loop, so the counter needs no lock.
    """

    def __init__(self, limit: Callable[[], int], what: str, gauge: _Gauge | None = None) -> None:
        self.limit = limit
        self.what = what
        self.gauge = gauge
        self.count = 0

    @contextmanager
    def admit(self, n: int = 1) -> Iterator[None]:
        limit = self.limit()
        if self.count + n > limit:
            raise Overloaded(f"server busy: {self.count} {self.what} (limit {limit}); retry shortly")
        self._add(n)
        try:
            yield
        finally:
            self._add(-n)

    def _add(self, delta: int) -> None:
        self.count += delta
        if self.gauge is not None:
            self.gauge.set(self.count)
