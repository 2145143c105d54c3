"""What an artefact builder is handed, and what it returns (training.artifacts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phishlens.training.contract import bundle as B
from phishlens.training.data.records import Record


@dataclass
class ArtifactContext:
    """What a builder may use. `model` is the peft model with this bundle's adapter active, in eval mode."""

    bundle_dir: Path
    manifest: B.Manifest
    validation: list[Record]  # the mix's validation rows (the rows calibration was fitted on)
    model: Any
    tokenizer: Any
    encoder: Any  # training.contract.prompt.PromptEncoder for this bundle's prompt
    seed: int = 13
    train: list[Record] = field(default_factory=list)  # the mix's training rows (model-independent features)
    cache: dict[str, Any] = field(default_factory=dict)  # shared between builders of one run (e.g. scores)


Builder = Callable[[ArtifactContext], dict[str, str]]
"""Writes its files into ``ctx.bundle_dir`` (JSON or safetensors only) and returns the manifest ``extras``
entries it owns ({role: file name})."""
