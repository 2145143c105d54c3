"""Wire model of `POST /v1/probe` as the client sees it (mirrors server/schemas_probe.py, written independently)."""

from __future__ import annotations

from typing import Any

from phishlens.clients.types import AdapterRef, Label, Usage, WireModel


class ProbeResponse(WireModel):
    """Per-layer readings of one text: probe outputs, their held-out accuracy, and the logit lens.

    `probes[name][i]` is layer `layers[i]`'s reading: P(positive) for binary probes (`label`:
    P(phishing), `concept.*`: P(present)), a {class: p} dict for `style` and `source`.
    `logit_lens[i]` is the calibrated P(phishing) read from layer i; the last equals `score`.
    """

    adapter: AdapterRef | None = None
    layers: list[str]
    probes: dict[str, list[Any]]
    probe_accuracy: dict[str, list[float]] = {}
    logit_lens: list[float]
    score: float
    label: Label
    uncertain: bool = False
    truncated: bool = False
    usage: Usage = Usage()
