"""Drift statistics as plug-ins (DESIGN.md §6, §9 "small base classes at the plug-in points").

A statistic says how far a live window is from the reference MIXED AT THE WINDOW'S ESTIMATED PREVALENCE
(explain.drift explains why). One class serves the three places a statistic is used:

- the bundle builder fits it on labelled reference rows (`fit`) and the profile stores what it fitted
  (`explain.reference`);
- the threshold calibration scores simulated in-distribution windows (`simulate`,
  `explain.drift_calibration`);
- the live monitor scores the served window (`__call__`, built from the stored profile by `from_reference`).

`STATISTICS` names the classes; `ReferenceProfile.statistics` records which one each kind of feature was
calibrated with ("scalar": one column per feature; "embedding": rows of vectors), so a server always
computes the statistic its thresholds were calibrated for. A new statistic is one subclass plus its entry
in `STATISTICS`; `simulate` and `from_reference` have generic (slower) defaults.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from . import drift as D


class DriftStatistic(ABC):
    """A fitted drift statistic: `stat(window, prior) -> float`, larger = further from the reference."""

    name: ClassVar[str]  # the key in STATISTICS and in reference.json
    kind: ClassVar[str]  # "scalar" (window [n] of one feature) | "embedding" (window [n, d])
    floor: ClassVar[float | None] = None  # calibrated thresholds never go below it (None: no floor)

    @classmethod
    @abstractmethod
    def fit(cls, ref: np.ndarray, y: np.ndarray, **options: Any) -> DriftStatistic:
        """Fit on reference rows `ref` ([n] or [n, d]) with labels `y` [n] (1 = phishing). `options` are
        hints a statistic may use or ignore (`gamma`: the kernel bandwidth the profile serves with)."""

    @abstractmethod
    def __call__(self, window: np.ndarray, prior: float) -> float:
        """The statistic of a live window against the reference mixed at phishing prevalence `prior`."""

    def simulate(self, held: np.ndarray, draws: np.ndarray, priors: np.ndarray) -> np.ndarray:
        """[S] statistics of the S windows `held[draws[s]]` (draws: [S, w] row indices) at `priors[s]`.
        Override with a vectorised version: calibration simulates thousands of windows."""
        return np.array([self(held[d], float(p)) for d, p in zip(draws, priors)], dtype=np.float64)

    @classmethod
    def from_reference(cls, samples: Sequence[np.ndarray], stored: Any) -> DriftStatistic:
        """Rebuild the fitted statistic from a stored profile entry. `samples`: the reference rows per class
        (legitimate, phishing); `stored`: the profile's entry for the feature (`FeatureRef` /
        `EmbeddingRef`). Default: fit again on the stored samples."""
        ref = np.concatenate([np.asarray(s) for s in samples])
        y = np.concatenate([np.full(len(s), c) for c, s in enumerate(samples)])
        return cls.fit(ref, y, gamma=getattr(stored, "gamma", None))


class PSI(DriftStatistic):
    """Population stability index over the pooled reference's deciles, against the per-class bin shares
    mixed at the prior (add-half smoothing keeps it finite)."""

    name = "psi"
    kind = "scalar"
    floor = D.PSI_FLOOR

    def __init__(self, edges: np.ndarray, props_by_class: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        self.props_by_class = np.asarray(props_by_class, dtype=np.float64)  # [2, bins]

    @classmethod
    def fit(cls, ref: np.ndarray, y: np.ndarray, **options: Any) -> PSI:
        ref = np.asarray(ref, dtype=np.float64)
        edges = D.decile_edges(ref)
        return cls(edges, np.stack([D.bin_props(ref[y == c], edges) for c in (0, 1)]))

    @classmethod
    def from_reference(cls, samples: Sequence[np.ndarray], stored: Any) -> PSI:
        return cls(np.asarray(stored.edges), stored.props)  # exactly what the thresholds were calibrated on

    def __call__(self, window: np.ndarray, prior: float) -> float:
        return D.psi(window, D.mixture_props(self.props_by_class, prior), self.edges)

    def simulate(self, held: np.ndarray, draws: np.ndarray, priors: np.ndarray) -> np.ndarray:
        n_sims, w = draws.shape
        kbins = len(self.edges) + 1
        b = D.bin_index(held, self.edges)[draws] + np.arange(n_sims)[:, None] * kbins
        counts = np.bincount(b.ravel(), minlength=n_sims * kbins).reshape(n_sims, kbins).astype(float)
        props = (counts + D.SMOOTH) / (w + D.SMOOTH * kbins)
        return D.psi_from_props(props, D.mixture_props(self.props_by_class, priors))


class MMD(DriftStatistic):
    """Unbiased MMD² with an RBF kernel between the window's embeddings and the reference reweighted to the
    prior; pairs of identical texts are left out of the within-window term."""

    name = "mmd2"
    kind = "embedding"

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, gamma: float, kernel: D.KernelMeans) -> None:
        self.vectors, self.labels, self.gamma, self.kernel = vectors, np.asarray(labels), float(gamma), kernel

    @classmethod
    def fit(cls, ref: np.ndarray, y: np.ndarray, **options: Any) -> MMD:
        gamma = options.get("gamma")
        gamma = D.rbf_gamma(ref) if gamma is None else float(gamma)
        return cls(ref, y, gamma, D.KernelMeans.of(ref, y, gamma))

    @classmethod
    def from_reference(cls, samples: Sequence[np.ndarray], stored: Any) -> MMD:
        return cls(stored.vectors, stored.labels, stored.gamma, stored.kernel)

    def __call__(self, window: np.ndarray, prior: float) -> float:
        return D.mmd2_prior(window, self.vectors, self.labels, self.gamma, self.kernel, prior)

    def simulate(self, held: np.ndarray, draws: np.ndarray, priors: np.ndarray) -> np.ndarray:
        # draw counts c per held-out row: sum over pairs of draws = c K c; pairs of one row with itself
        # (K_jj = 1) are left out, as the live statistic leaves out identical texts
        n_sims, w = draws.shape
        held = np.asarray(held, dtype=np.float64)
        ref = np.asarray(self.vectors, dtype=np.float64)
        k_hh = D.rbf(held, held, self.gamma)
        k_hr = D.rbf(held, ref, self.gamma)
        m1, m0 = k_hr[:, self.labels == 1].mean(1), k_hr[:, self.labels == 0].mean(1)
        c = np.zeros((n_sims, len(held)))
        np.add.at(c, (np.repeat(np.arange(n_sims), w), draws.ravel()), 1.0)
        same = (c * c).sum(1)
        kxx = (((c @ k_hh) * c).sum(1) - same) / np.maximum(w * w - same, 1.0)
        cross = (priors * (c @ m1) + (1 - priors) * (c @ m0)) / w
        return kxx - 2.0 * cross + self.kernel.kyy(priors)


STATISTICS: dict[str, type[DriftStatistic]] = {cls.name: cls for cls in (PSI, MMD)}
DEFAULT: dict[str, str] = {"scalar": PSI.name, "embedding": MMD.name}  # kind -> statistic of new profiles


def statistic_class(name: str, kind: str) -> type[DriftStatistic]:
    """The registered class `name`, checked to apply to `kind` features."""
    cls = STATISTICS.get(name)
    if cls is None or cls.kind != kind:
        known = sorted(n for n, c in STATISTICS.items() if c.kind == kind)
        raise ValueError(f"unknown {kind} drift statistic {name!r}; known: {known}")
    return cls
