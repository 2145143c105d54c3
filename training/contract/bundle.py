"""The adapter bundle: the contract between training and serving (DESIGN.md §3).

A bundle is a directory holding the peft adapter (``adapter_config.json`` +
``adapter_model.safetensors``), the manifest ``phishlens.json`` and optional JSON/safetensors
extras (reference profile, probes). Only JSON and safetensors are ever read: any other file
(pickles, .bin, .pt, code) makes the bundle invalid, so loading a bundle can never run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phishlens.training.contract.pipeline import PIPELINE_NAME
from phishlens.training.contract.prompt import check_template

MANIFEST = "phishlens.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")  # .md: an optional human-readable card
REQUIRED = (MANIFEST, ADAPTER_CONFIG, ADAPTER_WEIGHTS)


class BundleError(ValueError):
    """A bundle that must not be served; the message says exactly why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseModelRef(_Strict):
    ref: str = Field(description="embedded name, local path or hub id the adapter was trained on")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    architecture: str


class PromptSpec(_Strict):
    template: str
    max_text_tokens: int = Field(ge=2)
    head_fraction: float = Field(default=0.5, ge=0.0, le=1.0)

    @field_validator("template")
    @classmethod
    def _slots(cls, v: str) -> str:
        check_template(v)  # a PromptError is a ValueError: pydantic reports it as a validation error
        return v


class LabelSpec(_Strict):
    name: Literal["phishing", "legitimate"]
    word: str
    token_id: int = Field(ge=0)


class Calibration(_Strict):
    temperature: float = Field(default=1.0, gt=0.0)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    uncertain_low: float = Field(default=0.35, ge=0.0, le=1.0)
    uncertain_high: float = Field(default=0.65, ge=0.0, le=1.0)
    max_fpr: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="the threshold rule: the F1-best cut whose validation false-positive rate is at most "
        "this (none: the F1-best cut)",
    )

    @model_validator(mode="after")
    def _band(self) -> Calibration:
        if not self.uncertain_low <= self.threshold <= self.uncertain_high:
            raise ValueError("need uncertain_low <= threshold <= uncertain_high")
        return self


class TrainingData(_Strict):
    mix: str
    sources: dict[str, int] = Field(description="training rows per source")
    rows: dict[str, int] = Field(description="rows per split used (train, validation)")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")


class LoraSpec(_Strict):
    r: int = Field(ge=1)
    alpha: float
    dropout: float = 0.0
    target_modules: list[str]
    layers: list[int] | None = None


class GoldenExample(_Strict):
    text: str
    label: Literal["phishing", "legitimate"]


class PipelineRef(_Strict):
    """The input pipeline (phishlens.training.contract.pipeline) the adapter was trained with.

    The default is version 1: bundles written before the manifest recorded it were trained with it.
    """

    name: str = PIPELINE_NAME
    version: int = Field(default=1, ge=1)


class Manifest(_Strict):
    """``phishlens.json``. Versioned: readers refuse formats they do not know."""

    format: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    base_model: BaseModelRef
    task: Literal["label_tokens"] = "label_tokens"
    prompt: PromptSpec
    pipeline: PipelineRef = PipelineRef()
    labels: list[LabelSpec] = Field(min_length=2, max_length=2)
    calibration: Calibration = Calibration()
    lora: LoraSpec
    training_data: TrainingData
    metrics: dict[str, Any] = Field(default_factory=dict)
    golden: list[GoldenExample] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)
    created: str = ""
    extras: dict[str, str] = Field(default_factory=dict, description="role -> file name in the bundle")

    @model_validator(mode="after")
    def _labels(self) -> Manifest:
        if [lab.name for lab in self.labels] != ["phishing", "legitimate"]:
            raise ValueError("labels must be [phishing, legitimate] in that order")
        if self.labels[0].token_id == self.labels[1].token_id:
            raise ValueError("label token ids must differ")
        return self

    @property
    def label_token_ids(self) -> list[int]:
        return [lab.token_id for lab in self.labels]


class Bundle(BaseModel):
    """A validated bundle on disk."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    path: Path
    manifest: Manifest
    sha256: str

    @property
    def name(self) -> str:
        return self.manifest.name


def content_sha256(path: Path) -> str:
    """sha256 over (relative name, bytes) of every file in the bundle, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _check_files(path: Path) -> None:
    if not path.is_dir():
        raise BundleError(f"bundle {path} is not a directory")
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        raise BundleError(f"bundle {path.name}: missing {', '.join(missing)}")
    bad = []
    for f in path.rglob("*"):
        if f.is_symlink():
            bad.append(f"{f.relative_to(path)} (symlink)")
        elif f.is_file() and f.suffix not in ALLOWED_SUFFIXES:
            bad.append(str(f.relative_to(path)))
    if bad:
        raise BundleError(
            f"bundle {path.name}: only JSON and safetensors files are allowed (never pickle or code); "
            f"found {', '.join(sorted(bad))}"
        )


def _check_adapter_config(path: Path, manifest: Manifest) -> None:
    try:
        cfg = json.loads((path / ADAPTER_CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # binary junk is "not JSON" too
        raise BundleError(f"bundle {path.name}: {ADAPTER_CONFIG} is not valid JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise BundleError(f"bundle {path.name}: {ADAPTER_CONFIG} must be a JSON object")
    problems = []
    if cfg.get("peft_type") != "LORA":
        problems.append(f"peft_type is {str(cfg.get('peft_type'))[:40]!r}, expected 'LORA'")
    if cfg.get("use_dora"):
        problems.append("DoRA adapters are not supported")
    r = cfg.get("r")
    if not isinstance(r, int) or isinstance(r, bool):
        problems.append(f"rank r is {str(r)[:40]!r}, expected an integer")
    elif r != manifest.lora.r:
        problems.append(f"rank {r} differs from manifest rank {manifest.lora.r}")
    if problems:
        raise BundleError(f"bundle {path.name}: " + "; ".join(problems))


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    for f in path.rglob("*.safetensors"):
        try:
            with safe_open(str(f), framework="numpy") as st:
                list(st.keys())
        except Exception as e:  # safetensors raises several types for corrupt headers
            raise BundleError(f"bundle {path.name}: {f.name} is not a readable safetensors file ({e})") from e


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # binary junk is "not JSON" too
        raise BundleError(f"bundle {path.name}: {MANIFEST} is not valid JSON ({e})") from e
    if isinstance(raw, dict) and raw.get("format") not in (None, 1):
        raise BundleError(
            f"bundle {path.name}: manifest format {raw.get('format')!r} is not supported "
            "(this reader knows 1)"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise BundleError(f"bundle {path.name}: malformed manifest ({errs})") from e


def load_bundle(path: str | Path, expected_base_sha256: str | None = None) -> Bundle:
    """Validate a bundle directory and return it; raise `BundleError` with the reason otherwise."""
    p = Path(path)
    _check_files(p)
    manifest = read_manifest(p)
    _check_adapter_config(p, manifest)
    _check_safetensors(p)
    if expected_base_sha256 is not None and manifest.base_model.sha256 != expected_base_sha256:
        raise BundleError(
            f"bundle {p.name} was trained on base weights {manifest.base_model.sha256[:12]}…, "
            f"but this server runs {expected_base_sha256[:12]}…"
        )
    return Bundle(path=p.resolve(), manifest=manifest, sha256=content_sha256(p))


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Atomic write, so a reader never sees half a manifest."""
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path / MANIFEST)
