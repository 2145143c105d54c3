"""SHAP attributions for any ``score(texts) -> P(phishing)`` callable (DESIGN.md §1, §7).

shap's Partition explainer with a Text masker whose "tokenizer" splits the text into the base
model's tokens (``granularity="token"``) or into whitespace-separated words made of those tokens
(``"word"``). Two things make it cheap and checkable:

* Every call shap makes goes through `_ScoreCache`: duplicate masked texts (within a round and
  across rounds) are scored once, and each round's new texts reach `score` as ONE list, so a
  serving backend can batch them. ``evaluations`` counts the unique texts scored (≤ ``max_evals``).
* shap's Text masker rebuilds text with normalised whitespace, so the text we explain is that
  normalised text (``masked_text``); ``prediction`` is its score and ``base_value + sum(attributions)
  == prediction`` holds to float precision (``additivity_error`` reports the gap).

No server, FastAPI or vLLM imports here: this module is shared by ``/v1/explain`` and offline tools.
"""

from __future__ import annotations

import re
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Granularity = Literal["token", "word"]
ScoreFn = Callable[[list[str]], np.ndarray]
MASK_TOKEN = "..."  # what shap puts where masked features were (collapsed runs → one)
DEFAULT_ROUND_NODES = (
    5  # partition-tree nodes expanded per round (2 texts each): shap's own schedule, its exact values
)
_WS = re.compile(r"\s+")


class AttributionError(ValueError):
    """The input cannot be explained (empty after normalisation, bad budget, bad scores)."""


class TooManyFeatures(AttributionError):
    """The text has more features (tokens or words) than the caller allows."""


@dataclass(frozen=True)
class Attribution:
    """One explanation: ``base_value + sum(attributions) == prediction`` (up to ``additivity_error``).

    ``tokens`` are exact substrings of ``masked_text`` and concatenate to it (each keeps the
    whitespace that follows it), so a renderer can highlight the text without re-tokenising.
    """

    tokens: list[str]
    attributions: list[float]  # [len(tokens)], in `output_space` units
    base_value: float  # score of the fully masked text
    prediction: float  # score of `masked_text`
    additivity_error: float  # |base_value + sum(attributions) - prediction|
    evaluations: int  # unique texts scored (≤ max_evals)
    output_space: str = "probability"
    masked_text: str = ""  # the text explained: the input with whitespace normalised as shap's masker does
    granularity: str = "word"
    max_evals: int = 0
    rounds: int = 0  # calls made to `score` (each one batch of new texts)

    def top(self, k: int = 5, sign: int = 1) -> list[tuple[str, float]]:
        """The k features pushing hardest towards phishing (sign=1) or legitimate (sign=-1)."""
        from .render import top_features

        return top_features(self.tokens, self.attributions, k, sign)


def normalise(text: str) -> str:
    """Whitespace as shap's Text masker writes it: runs collapse to one space, ends stripped."""
    return _WS.sub(" ", text).strip()


class _SegmentTokenizer:
    """The minimal tokenizer API shap's Text masker needs, over the base tokenizer's offsets.

    Features are base-tokenizer tokens (no special tokens: the prompt template adds those) or, for
    words, runs of tokens with no whitespace between them. ``input_ids`` are feature indices; shap
    only uses them for counting, since we ask for string output.
    """

    def __init__(self, tokenizer: Any, granularity: Granularity) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise AttributionError("explanations need a fast (Rust) tokenizer: offsets map tokens to text")
        self.tokenizer = tokenizer
        self.granularity = granularity

    def spans(self, s: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)
        spans = [(int(a), int(b)) for a, b in enc["offset_mapping"] if b > a]
        if self.granularity == "token" or not spans:
            return spans
        words = [spans[0]]
        for a, b in spans[1:]:
            prev_end = words[-1][1]
            # a new word starts where whitespace separates it from the previous token (or opens it)
            if s[prev_end:a].isspace() or s[a].isspace() or prev_end < a:
                words.append((a, b))
            else:
                words[-1] = (words[-1][0], b)
        return words

    def __call__(self, s: str, return_offsets_mapping: bool = True, **_: Any) -> dict[str, Any]:
        spans = self.spans(s)
        out: dict[str, Any] = {"input_ids": list(range(1, len(spans) + 1))}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class _ThreadRandom:
    """``np.random`` for shap's Partition module: a seeded RandomState per explaining thread.

    shap breaks priority ties with the global ``np.random.randn()``. Seeding that global from two
    explanations at once made their draws repeat, so equal (priority, draw) pairs reached heapq,
    which then compared numpy arrays and the request failed. Threads outside `attribute` fall
    through to the global generator.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    def __getattr__(self, name: str) -> Any:
        state = getattr(self.local, "state", None)
        return getattr(state if state is not None else np.random, name)


class _NumpyView(types.ModuleType):
    """numpy, except ``random`` (module-typed so numba still resolves the module's jitted globals)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


_THREAD_RANDOM = _ThreadRandom()


def _partition_module() -> Any:
    """shap's Partition explainer module, with its ``np.random`` made per-thread (once per process)."""
    import shap.explainers._partition as part

    if not isinstance(part.np, _NumpyView):
        view = _NumpyView("numpy")
        view.random = _THREAD_RANDOM  # type: ignore[attr-defined]
        part.np = view
    return part


class _ScoreCache:
    """shap's model: dedup texts, send each round's new ones to `score` as one batch, keep the budget."""

    def __init__(self, score: ScoreFn, max_evals: int) -> None:
        self.score = score
        self.max_evals = max_evals
        self.values: dict[str, float] = {}
        self.rounds = 0
        self.lock = threading.Lock()  # shap is single-threaded; the lock only guards reuse by callers

    def __call__(self, texts: Sequence[Any]) -> np.ndarray:
        batch = [str(t) for t in np.asarray(texts).reshape(-1)]
        with self.lock:
            new = list(dict.fromkeys(t for t in batch if t not in self.values))
            if new:
                total = len(self.values) + len(new)
                if total > self.max_evals:  # shap's own loop keeps us under; check, do not trust
                    raise AttributionError(f"budget exceeded: {total} > {self.max_evals}")
                got = np.asarray(self.score(new), dtype=np.float64).reshape(-1)
                if got.shape != (len(new),) or not np.all(np.isfinite(got)):
                    raise AttributionError(
                        f"score returned {got.shape} finite={np.all(np.isfinite(got))} for {len(new)} texts"
                    )
                self.values.update(zip(new, got.tolist()))
                self.rounds += 1
            return np.array([self.values[t] for t in batch], dtype=np.float64)


def attribute(
    score: ScoreFn,
    text: str,
    tokenizer: Any,
    *,
    granularity: Granularity = "word",
    max_evals: int = 300,
    round_nodes: int = DEFAULT_ROUND_NODES,
    seed: int = 0,
    max_features: int | None = None,
) -> Attribution:
    """Partition-SHAP attributions of ``score`` (P(phishing) per text) for ``text``.

    ``score`` gets lists of texts and returns one probability each; it is called once per round
    with only texts it has not seen. ``max_evals`` bounds the unique texts scored (the full and
    the fully masked text included). ``round_nodes`` trades fidelity to shap's default schedule
    (5 nodes per round, the default) for fewer, larger batches. ``seed`` fixes shap's tie-breaking.
    ``max_features``: refuse (`TooManyFeatures`) texts with more tokens/words, before scoring anything.
    """
    import shap

    if granularity not in ("token", "word"):
        raise AttributionError(f"granularity must be 'token' or 'word', not {granularity!r}")
    if max_evals < 4:
        raise AttributionError(f"max_evals must be >= 4, got {max_evals}")
    s = normalise(text)
    if not s:
        raise AttributionError("text is empty after whitespace normalisation")
    segmenter = _SegmentTokenizer(tokenizer, granularity)
    if max_features is not None and len(segmenter.spans(s)) > max_features:
        raise TooManyFeatures(
            f"text has {len(segmenter.spans(s))} {granularity}s; at most {max_features} can be explained"
        )
    masker = shap.maskers.Text(segmenter, mask_token=MASK_TOKEN, collapse_mask_token=True)
    cache = _ScoreCache(score, max_evals)
    masked_text = str(masker(np.ones(masker.shape(s)[1], dtype=bool), s)[0][0])
    tokens = [str(t) for t in masker.data_transform(s)[0]]
    n = len(tokens)
    if n == 0:
        raise AttributionError("text has no tokens")
    if n == 1:  # shap's partition tree needs two leaves; one feature carries the whole difference
        f = cache([masked_text, str(masker(np.zeros(1, dtype=bool), s)[0][0])])
        values, base, pred = np.array([f[0] - f[1]]), float(f[1]), float(f[0])
    else:
        explainer = _partition_module().PartitionExplainer(cache, masker)
        # shap breaks priority ties with np.random: this thread's own stream, seeded as np.random.seed(seed)
        _THREAD_RANDOM.local.state = np.random.RandomState(seed)
        try:
            ex = explainer([s], max_evals=max_evals, batch_size=max(1, round_nodes), silent=True)
        finally:
            _THREAD_RANDOM.local.state = None
        values = np.asarray(ex.values[0], dtype=np.float64).reshape(-1)
        base = float(np.asarray(ex.base_values).reshape(-1)[0])
        pred = float(cache([masked_text])[0])  # already scored (f11): no extra evaluation
    if values.shape != (n,):
        raise AttributionError(f"shap returned {values.shape} values for {n} features")
    return Attribution(
        tokens=tokens,
        attributions=values.tolist(),
        base_value=base,
        prediction=pred,
        additivity_error=float(abs(base + values.sum() - pred)),
        evaluations=len(cache.values),
        masked_text=masked_text,
        granularity=granularity,
        max_evals=max_evals,
        rounds=cache.rounds,
    )


class _WhitespaceTokenizer:
    is_fast = True

    def __call__(
        self, s: str, add_special_tokens: bool = False, return_offsets_mapping: bool = True, **_: Any
    ) -> dict[str, Any]:
        spans = [m.span() for m in re.finditer(r"\S+", s)]
        return {"input_ids": list(range(1, len(spans) + 1)), "offset_mapping": spans}


def warm_up() -> float:
    """Import shap and JIT-compile its numba kernels (≈20 s once per process); returns the seconds taken."""
    import time

    t = time.perf_counter()
    attribute(
        lambda xs: np.array([len(x) / 100.0 for x in xs]),
        "one two three four",
        _WhitespaceTokenizer(),
        max_evals=20,
    )
    return time.perf_counter() - t
