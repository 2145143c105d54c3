"""The one interface between the API layer and an inference engine (DESIGN.md §1, STYLE.md H1).

Backends take token ids (the prompt encoder in `phishlens.training.contract.prompt` builds them, so every
backend sees identical inputs) and return the log-probabilities of the label tokens at the answer
position. Calibration, thresholds and labels are the service's job, not the backend's.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class BackendError(RuntimeError):
    """The engine failed while serving a request (maps to HTTP 424)."""


@dataclass(frozen=True)
class AdapterHandle:
    """An adapter as a backend knows it: a unique positive int id, a name and the bundle path."""

    adapter_id: int
    name: str
    path: Path


@dataclass(frozen=True)
class ScoreRequest:
    prompt_ids: Sequence[int]
    adapter: AdapterHandle | None  # None: the bare base model
    label_token_ids: Sequence[int]


@dataclass(frozen=True)
class ScoreResult:
    label_logprobs: tuple[float, ...]  # [n_labels], log-softmax over the full vocabulary
    n_prompt_tokens: int


class Backend(ABC):
    """An inference engine hosting one base model and many LoRA adapters.

    `start` sets the three base-model attributes below; the registry reads them for every bundle it loads.
    """

    name: str = "abstract"
    tokenizer: Any = None
    """The base model's tokenizer: the registry builds each adapter's prompt encoder on it and checks the
    bundle's label token ids against it."""
    base_sha256: str = ""
    """sha256 of the base weights: a bundle trained on other weights is refused."""
    base_path: str = ""
    """The base model's directory (HF layout); "" for engines without one on disk (test fakes), which skips
    the check of adapter shapes against its config."""

    @abstractmethod
    async def start(self) -> None:
        """Load the base model and start the engine; called once in the app lifespan."""

    @abstractmethod
    async def close(self) -> None:
        """Stop the engine and free its memory; safe to call twice."""

    @abstractmethod
    async def add_adapter(self, adapter: AdapterHandle) -> None:
        """Make an adapter servable (load weights); raise BackendError if the engine refuses it."""

    @abstractmethod
    async def remove_adapter(self, adapter: AdapterHandle) -> None:
        """Forget an adapter; requests already admitted with it still complete with it."""

    @abstractmethod
    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        """Label-token log-probs for each request, in order; mixed adapters in one call are allowed."""

    @abstractmethod
    async def healthy(self) -> bool:
        """True when the engine can serve."""

    @property
    def max_adapters(self) -> int:
        """How many adapters the engine can hold at once."""
        return 64

    async def run_compute(self, fn: Callable[[], T]) -> T:
        """Run heavy work that is not the engine's own (the explain replica's forwards) where it contends
        least with the engine. Default: a worker thread."""
        return await asyncio.to_thread(fn)
