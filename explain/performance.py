"""Performance without labels (CBPE) and with them (feedback): pure arithmetic, no server imports.

Confidence-based performance estimation (CBPE, as in NannyML): if the served probabilities are
calibrated, a text served with P(phishing) = p and predicted "phishing" is a true positive with
probability p and a false positive with probability 1 - p; one predicted "legitimate" is a false
negative with probability p and a true negative with 1 - p. Summing over a window gives the expected
confusion matrix, and from it expected precision and recall, with no true label at all.

Calibration holds at the class prior it was fitted under; when the prevalence moves (phishing is rare in
production, the calibration rows are balanced), `ExpectedWindow` adjusts the probabilities to the window's
estimated prevalence first (explain.prior). The estimate is only as good as the calibration: under
drift a model can stay confident and be wrong, so CBPE misses the failures the drift statistics catch;
true labels (feedback) are the ground truth.
Both windows here are bounded (a deque of the last N items) and keep running sums, so an update is O(1).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

Outcome = Literal["tp", "fp", "tn", "fn"]
OUTCOMES: tuple[Outcome, ...] = ("tp", "fp", "tn", "fn")


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when the denominator is zero (the quantity is undefined, not zero)."""
    return num / den if den > 0 else math.nan


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix for the positive class "phishing"; counts may be expected (fractional) values."""

    tp: float = 0.0
    fp: float = 0.0
    tn: float = 0.0
    fn: float = 0.0

    @property
    def n(self) -> float:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def expected_contribution(p_phishing: float, predicted_phishing: bool) -> Confusion:
    """One served verdict's expected share of each cell (the four cells sum to 1)."""
    if not 0.0 <= p_phishing <= 1.0 or math.isnan(p_phishing):
        raise ValueError(f"p_phishing must be in [0, 1], got {p_phishing}")
    if predicted_phishing:
        return Confusion(tp=p_phishing, fp=1.0 - p_phishing)
    return Confusion(fn=p_phishing, tn=1.0 - p_phishing)


def expected_confusion(items: Iterable[tuple[float, bool]]) -> Confusion:
    """The expected confusion matrix of (P(phishing), predicted phishing) pairs under calibration."""
    tp = fp = tn = fn = 0.0
    for p, pred in items:
        c = expected_contribution(p, pred)
        tp, fp, tn, fn = tp + c.tp, fp + c.fp, tn + c.tn, fn + c.fn
    return Confusion(tp, fp, tn, fn)


def outcome(predicted_phishing: bool, actually_phishing: bool) -> Outcome:
    """The confusion cell of one labelled verdict."""
    if predicted_phishing:
        return "tp" if actually_phishing else "fp"
    return "fn" if actually_phishing else "tn"


class ExpectedWindow:
    """CBPE over the last `size` served verdicts.

    With `calibration_prior` (the phishing share of the rows the adapter was calibrated on) the served
    probabilities are first re-expressed under the window's own estimated prevalence (explain.prior,
    Saerens et al. 2002): probabilities calibrated on balanced rows overstate P(phishing) when phishing is
    rare, and CBPE would promise a precision the adapter does not have. Without it: plain CBPE with running
    sums (O(1) per verdict), recomputed from the window every `size` updates so error cannot accumulate.
    """

    def __init__(self, size: int, calibration_prior: float | None = None) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self.size = size
        self.calibration_prior = calibration_prior
        self._items: deque[Confusion] = deque()
        self._raw: deque[tuple[float, bool]] = deque()
        self._sum = [0.0, 0.0, 0.0, 0.0]
        self._since_resum = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, p_phishing: float, predicted_phishing: bool) -> None:
        c = expected_contribution(p_phishing, predicted_phishing)
        self._items.append(c)
        self._raw.append((p_phishing, predicted_phishing))
        self._shift(c, +1)
        if len(self._items) > self.size:
            self._shift(self._items.popleft(), -1)
            self._raw.popleft()
        self._since_resum += 1
        if self._since_resum >= self.size:
            self._since_resum = 0
            self._sum = [0.0, 0.0, 0.0, 0.0]
            for item in self._items:
                self._shift(item, +1)

    def _shift(self, c: Confusion, sign: int) -> None:
        s = self._sum
        s[0] += sign * c.tp
        s[1] += sign * c.fp
        s[2] += sign * c.tn
        s[3] += sign * c.fn

    @property
    def prevalence(self) -> float:
        """The window's estimated phishing prevalence (NaN without a calibration prior or verdicts)."""
        if self.calibration_prior is None or not self._raw:
            return math.nan
        from .prior import mle_prior

        return float(mle_prior(np.fromiter((p for p, _ in self._raw), float), self.calibration_prior))

    @property
    def confusion(self) -> Confusion:
        if self.calibration_prior is not None and self._raw:
            from .prior import adjust_posteriors

            p = np.fromiter((p for p, _ in self._raw), float)
            pred = np.fromiter((d for _, d in self._raw), bool)
            q = adjust_posteriors(p, self.calibration_prior, self.prevalence)
            return Confusion(
                float(q[pred].sum()),
                float((1 - q[pred]).sum()),
                float((1 - q[~pred]).sum()),
                float(q[~pred].sum()),
            )
        # clamp tiny negatives left by subtraction
        return Confusion(*(max(0.0, v) for v in self._sum))


class OutcomeWindow:
    """Counts of labelled outcomes (tp/fp/tn/fn) over the last `size` labels."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self.size = size
        self._items: deque[Outcome] = deque()
        self._counts: dict[Outcome, int] = dict.fromkeys(OUTCOMES, 0)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Outcome]:
        """The outcomes in the window, oldest first."""
        return iter(self._items)

    def add(self, o: Outcome) -> None:
        self._items.append(o)
        self._counts[o] += 1
        if len(self._items) > self.size:
            self._counts[self._items.popleft()] -= 1

    @property
    def confusion(self) -> Confusion:
        c = self._counts
        return Confusion(c["tp"], c["fp"], c["tn"], c["fn"])
