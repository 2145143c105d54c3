"""The served verdict, one definition for /v1/classify, /v1/explain and /v1/probe (DESIGN.md §4).

P(phishing) = sigmoid((lp_phishing - lp_legitimate) / T); phishing when P >= the adapter's threshold;
uncertain inside its band. An engine failure while computing it is the API's 424, never a 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from phishlens.training.contract.bundle import Calibration

from ..backends.base import BackendError
from ..errors import BackendFailure, PhishlensError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    label: str  # "phishing" | "legitimate"
    uncertain: bool


def verdict(p_phishing: float, cal: Calibration) -> Verdict:
    """Label by the adapter's threshold; uncertain inside its band (the same rule on every route)."""
    return Verdict(
        "phishing" if p_phishing >= cal.threshold else "legitimate",
        cal.uncertain_low <= p_phishing <= cal.uncertain_high,
    )


def probability(label_logprobs: Sequence[float], cal: Calibration) -> float:
    """Calibrated P(phishing) from the [phishing, legitimate] label-token log-probs."""
    margin = (label_logprobs[0] - label_logprobs[1]) / cal.temperature
    return 1.0 / (1.0 + math.exp(-margin)) if margin >= 0 else math.exp(margin) / (1.0 + math.exp(margin))


def calibrate(label_logprobs: Sequence[float], cal: Calibration) -> tuple[float, str, bool]:
    """(P(phishing), label, uncertain) from the label-token log-probs."""
    p = probability(label_logprobs, cal)
    v = verdict(p, cal)
    return p, v.label, v.uncertain


@contextmanager
def engine_failures(what: str, *, any_exception: bool = False) -> Iterator[None]:
    """Failures of the engine while serving a request → 424 `backend_failure`.

    `BackendError` is how backends report them; `any_exception` also maps every other exception (code that
    drives torch directly, e.g. the HF replica: loading or forward failures), logged with its trace and
    answered with only its type (no request text). The API's own errors pass through."""
    try:
        yield
    except PhishlensError:
        raise
    except BackendError as e:
        raise BackendFailure(f"{what} failed: {e}") from e
    except Exception as e:
        if not any_exception:
            raise
        logger.exception("%s failed", what)
        raise BackendFailure(f"{what} failed: {type(e).__name__}") from e
