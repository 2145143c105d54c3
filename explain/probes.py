"""Linear probes per layer: is a property of the input linearly decodable from layer ``l``?

A :class:`LinearProbe` is one logistic regression per layer on pooled hidden states
(:mod:`.hidden`), with its held-out accuracy per layer and the majority-class baseline. Binary
probes output P(positive class) per layer; multi-class probes (style, source) output a class
distribution per layer. Standardisation is folded into the stored weights, so applying a probe
is one affine map and a sigmoid / softmax: no client code and no pickles (safetensors + a JSON
index beside it).

Files: ``probes.safetensors`` (``<name>.weight`` ``[n_layers, n_out, d_model]``, ``<name>.bias``
``[n_layers, n_out]``; ``n_out`` is 1 for binary probes) and ``probes.json`` (classes, pooling,
accuracy per layer, baseline, row counts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .hidden import HiddenStates, Pooling

FORMAT = 1
WEIGHTS_FILE = "probes.safetensors"
INDEX_FILE = "probes.json"
MIN_PER_CLASS = 4  # fewer rows of a class than this: the class is dropped (too few to hold some out)


class ProbeError(ValueError):
    """A probe file that cannot be read or does not fit the model."""


@dataclass(frozen=True)
class LinearProbe:
    """One logistic regression per layer; ``classes[1]`` is the positive class of a binary probe."""

    name: str
    classes: list[str]
    pooling: Pooling
    weight: np.ndarray  # [n_layers, n_out, d_model] float32
    bias: np.ndarray  # [n_layers, n_out] float32
    accuracy: list[float]  # held-out accuracy per layer
    baseline: float  # held-out accuracy of always answering the majority class
    n_train: int
    n_test: int

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def proba(self, states: np.ndarray) -> np.ndarray:
        """``[n, n_layers, d]`` → ``[n, n_layers, n_classes]`` class probabilities per layer."""
        if states.shape[1:] != (self.weight.shape[0], self.weight.shape[2]):
            raise ProbeError(
                f"probe {self.name} expects states [n, {self.weight.shape[0]}, {self.weight.shape[2]}], "
                f"got {list(states.shape)}"
            )
        z = np.einsum("nld,lkd->nlk", states.astype(np.float64), self.weight.astype(np.float64)) + self.bias
        if self.binary:
            p1 = np.exp(-np.logaddexp(0.0, -z[..., 0]))
            return np.stack([1.0 - p1, p1], axis=-1)
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def values(self, states_one: np.ndarray) -> list[float] | list[dict[str, float]]:
        """One text's states ``[n_layers, d]`` → per layer P(positive) (binary) or {class: p}."""
        p = self.proba(states_one[None])[0]
        if self.binary:
            return [float(v) for v in p[:, 1]]
        return [{c: float(v) for c, v in zip(self.classes, row)} for row in p]

    def index_entry(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "pooling": self.pooling,
            "accuracy": self.accuracy,
            "baseline": self.baseline,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "positive": self.classes[1] if self.binary else None,
        }


@dataclass
class ProbeSet:
    """The probes of one adapter, over the same layers."""

    layers: list[str]
    d_model: int
    probes: dict[str, LinearProbe] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # target name → why no probe was trained

    def apply(self, hidden: HiddenStates, row: int = 0) -> dict[str, list[float] | list[dict[str, float]]]:
        """Probe outputs per layer for one text of ``hidden``."""
        if hidden.layers != self.layers:
            raise ProbeError(
                f"probes were trained on {len(self.layers)} layers, the model has {len(hidden.layers)}"
            )
        return {name: p.values(hidden.pooled(p.pooling)[row]) for name, p in self.probes.items()}

    def accuracy_table(self) -> dict[str, dict[str, Any]]:
        return {name: {"accuracy": p.accuracy, "baseline": p.baseline} for name, p in self.probes.items()}

    # -- files ------------------------------------------------------------------------------------
    def save(
        self, directory: Path, weights_file: str = WEIGHTS_FILE, index_file: str = INDEX_FILE
    ) -> dict[str, str]:
        """Write the two files (atomically each) and return the manifest ``extras`` entries."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        tensors: dict[str, np.ndarray] = {}
        for name, p in self.probes.items():
            tensors[f"{name}.weight"] = np.ascontiguousarray(p.weight, dtype=np.float32)
            tensors[f"{name}.bias"] = np.ascontiguousarray(p.bias, dtype=np.float32)
        index = {
            "format": FORMAT,
            "layers": self.layers,
            "d_model": self.d_model,
            "weights": weights_file,
            "probes": {n: p.index_entry() for n, p in self.probes.items()},
            "skipped": self.skipped,
        }
        tmp = directory / (weights_file + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": str(FORMAT), "index": index_file})
        tmp.replace(directory / weights_file)
        tmp_i = directory / (index_file + ".tmp")
        tmp_i.write_text(json.dumps(index, indent=1) + "\n")
        tmp_i.replace(directory / index_file)
        return {"probes": weights_file, "probes_index": index_file}

    @classmethod
    def load(
        cls, directory: Path, weights_file: str = WEIGHTS_FILE, index_file: str = INDEX_FILE
    ) -> ProbeSet:
        from safetensors.numpy import load_file

        directory = Path(directory)
        try:
            index = json.loads((directory / index_file).read_text())
            tensors = load_file(str(directory / weights_file))
        except (OSError, ValueError) as e:
            raise ProbeError(f"cannot read probes in {directory.name}: {e}") from e
        if index.get("format") != FORMAT:
            raise ProbeError(f"probe index format {index.get('format')!r} is not {FORMAT}")
        layers, d = list(index["layers"]), int(index["d_model"])
        out = cls(layers, d, skipped=dict(index.get("skipped", {})))
        for name, e in index["probes"].items():
            w, b = tensors.get(f"{name}.weight"), tensors.get(f"{name}.bias")
            n_out = 1 if len(e["classes"]) == 2 else len(e["classes"])
            if (
                w is None
                or b is None
                or w.shape != (len(layers), n_out, d)
                or b.shape != (len(layers), n_out)
            ):
                raise ProbeError(f"probe {name}: tensors missing or of the wrong shape")
            out.probes[name] = LinearProbe(
                name,
                list(e["classes"]),
                e["pooling"],
                w,
                b,
                list(e["accuracy"]),
                float(e["baseline"]),
                int(e["n_train"]),
                int(e["n_test"]),
            )
        return out


def _split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train / held-out indices (every class on both sides)."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, int(round(len(idx) * test_size)))
        k = min(k, len(idx) - 1)
        te += idx[:k].tolist()
        tr += idx[k:].tolist()
    return np.array(sorted(tr)), np.array(sorted(te))


def fit_probe(
    name: str,
    states: np.ndarray,
    labels: Sequence[str],
    pooling: Pooling = "last",
    seed: int = 13,
    test_size: float = 0.3,
    c: float = 0.5,
) -> LinearProbe:
    """Fit one logistic regression per layer on ``states`` ``[n, n_layers, d]`` for string ``labels``.

    Rows of classes with fewer than ``MIN_PER_CLASS`` members are dropped; raises ValueError when
    fewer than two classes remain.
    """
    from sklearn.linear_model import LogisticRegression

    y_all = np.asarray([str(v) for v in labels])
    classes, counts = np.unique(y_all, return_counts=True)
    keep_cls = classes[counts >= MIN_PER_CLASS]
    if len(keep_cls) < 2:
        raise ValueError(
            f"probe {name}: needs two classes with >= {MIN_PER_CLASS} rows each; "
            f"counts {dict(zip(classes.tolist(), counts.tolist()))}"
        )
    keep = np.isin(y_all, keep_cls)
    x, y = states[keep].astype(np.float64), y_all[keep]
    tr, te = _split(y, test_size, seed)
    cls_list = sorted(keep_cls.tolist())
    n_layers, d = x.shape[1], x.shape[2]
    n_out = 1 if len(cls_list) == 2 else len(cls_list)
    weight = np.zeros((n_layers, n_out, d), dtype=np.float32)
    bias = np.zeros((n_layers, n_out), dtype=np.float32)
    acc: list[float] = []
    majority = max(cls_list, key=lambda k: int((y[tr] == k).sum()))
    baseline = float((y[te] == majority).mean())
    for li in range(n_layers):
        xl = x[:, li]
        mu, sd = xl[tr].mean(0), xl[tr].std(0) + 1e-6
        clf = LogisticRegression(C=c, max_iter=300, random_state=seed)
        clf.fit((xl[tr] - mu) / sd, y[tr])
        assert list(clf.classes_) == cls_list
        acc.append(round(float(clf.score((xl[te] - mu) / sd, y[te])), 4))
        w = clf.coef_ / sd  # fold the standardisation into the weights
        weight[li] = w
        bias[li] = clf.intercept_ - (w * mu).sum(1)
    return LinearProbe(name, cls_list, pooling, weight, bias, acc, round(baseline, 4), len(tr), len(te))


def train_probes(
    hidden: HiddenStates, targets: Mapping[str, Sequence[str]], pooling: Pooling = "last", seed: int = 13
) -> ProbeSet:
    """A probe per target (name → label per row of ``hidden``); targets that cannot be fitted are
    recorded in ``skipped`` with the reason."""
    states = hidden.pooled(pooling)
    out = ProbeSet(list(hidden.layers), int(states.shape[2]))
    for name, labels in targets.items():
        if len(labels) != states.shape[0]:
            raise ValueError(f"target {name} has {len(labels)} labels for {states.shape[0]} rows")
        try:
            out.probes[name] = fit_probe(name, states, labels, pooling, seed)
        except ValueError as e:
            out.skipped[name] = str(e)
    return out


def peak_layer(accuracy: Sequence[float]) -> int:
    """Layer of the best held-out accuracy (the earliest on ties)."""
    a = np.asarray(accuracy, dtype=float)
    return int(np.flatnonzero(a >= a.max() - 1e-9)[0]) if a.size else -1


def first_layer_reaching(accuracy: Sequence[float], level: float) -> int | None:
    for i, v in enumerate(accuracy):
        if not math.isnan(v) and v >= level:
            return i
    return None
