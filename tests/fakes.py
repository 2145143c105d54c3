"""A deterministic fake backend and a tiny-bundle writer, so registry/service/API tests need no engine.

FakeBackend scores from the token ids: a prompt containing a trigger token (" urgent" / "urgent") gets
label log-probs with margin +3 (phishing), any other prompt -3. It refuses requests naming an adapter
it does not hold (so a request served after its adapter was removed fails loudly), and it can be made
slow (`delay`), blocked (`gate`), failing (`fail`) or unhealthy (`is_healthy`).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from phishlens.server.backends.base import AdapterHandle, Backend, BackendError, ScoreRequest, ScoreResult
from phishlens.training.contract.bundle import ADAPTER_CONFIG, ADAPTER_WEIGHTS, Manifest, write_manifest
from phishlens.training.contract.prompt import DEFAULT_LABEL_WORDS, DEFAULT_TEMPLATE, label_token_ids

TRIGGER_WORDS = (" urgent", "urgent")
MARGIN = 3.0


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def expected_p(phishy: bool, temperature: float = 1.0) -> float:
    """The P(phishing) the service should serve for a fake-scored text through a bundle with `temperature`."""
    m = (MARGIN if phishy else -MARGIN) / temperature
    return 1.0 / (1.0 + math.exp(-m))


class FakeBackend(Backend):
    name = "fake"

    def __init__(
        self, tokenizer: Any, base_sha256: str, *, delay: float = 0.0, max_adapters: int = 64
    ) -> None:
        self.tokenizer = tokenizer
        self.base_sha256 = base_sha256
        self.delay = delay
        self._max_adapters = max_adapters
        self.adapters: dict[int, AdapterHandle] = {}
        self.started = self.closed = False
        self.is_healthy = True
        self.fail: str | None = None  # when set, score raises BackendError(fail)
        self.gate: threading.Event | None = None  # when set, score waits until the event is set
        self.calls: list[list[ScoreRequest]] = []
        self.removed: list[AdapterHandle] = []
        self.trigger_ids = {
            t
            for w in TRIGGER_WORDS
            for t in tokenizer.encode(w, add_special_tokens=False)
            if len(tokenizer.encode(w, add_special_tokens=False)) == 1
        }

    @property
    def max_adapters(self) -> int:
        return self._max_adapters

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def add_adapter(self, adapter: AdapterHandle) -> None:
        if adapter.adapter_id in self.adapters:
            raise BackendError(f"adapter id {adapter.adapter_id} already loaded")
        self.adapters[adapter.adapter_id] = adapter

    async def remove_adapter(self, adapter: AdapterHandle) -> None:
        self.adapters.pop(adapter.adapter_id, None)
        self.removed.append(adapter)

    async def healthy(self) -> bool:
        return self.started and not self.closed and self.is_healthy

    async def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        gate = self.gate
        if gate is not None:
            await asyncio.to_thread(gate.wait, 30)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise BackendError(self.fail)
        self.calls.append(list(requests))
        out = []
        for r in requests:
            if r.adapter is not None and self.adapters.get(r.adapter.adapter_id) != r.adapter:
                raise BackendError(f"adapter {r.adapter.name} (id {r.adapter.adapter_id}) is not loaded")
            margin = MARGIN if any(t in self.trigger_ids for t in r.prompt_ids) else -MARGIN
            out.append(ScoreResult((log_sigmoid(margin), log_sigmoid(-margin)), len(r.prompt_ids)))
        return out


def write_bundle(
    root: Path,
    name: str,
    *,
    tokenizer: Any,
    base_sha256: str,
    temperature: float = 1.0,
    golden: Sequence[tuple[str, str]] = (),
    r: int = 4,
    max_text_tokens: int = 64,
    seed: int = 0,
    template: str = DEFAULT_TEMPLATE,
) -> Path:
    """Write a small valid bundle `<root>/<name>` (manifest + LORA adapter_config + safetensors)."""
    from safetensors.numpy import save_file

    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    ids = label_token_ids(tokenizer, DEFAULT_LABEL_WORDS)
    manifest = Manifest.model_validate(
        {
            "name": name,
            "base_model": {"ref": "smollm2", "sha256": base_sha256, "architecture": "llama"},
            "prompt": {"template": template, "max_text_tokens": max_text_tokens},
            "labels": [
                {"name": "phishing", "word": DEFAULT_LABEL_WORDS[0], "token_id": ids[0]},
                {"name": "legitimate", "word": DEFAULT_LABEL_WORDS[1], "token_id": ids[1]},
            ],
            "calibration": {"temperature": temperature},
            "lora": {"r": r, "alpha": 2.0 * r, "target_modules": ["q_proj", "v_proj"]},
            "training_data": {
                "mix": "test",
                "sources": {"fake": 1},
                "rows": {"train": 1},
                "fingerprint": "0" * 64,
            },
            "golden": [{"text": t, "label": lab} for t, lab in golden],
            "created": "2025-01-01T00:00:00Z",
        }
    )
    write_manifest(path, manifest)
    (path / ADAPTER_CONFIG).write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": r,
                "lora_alpha": 2 * r,
                "target_modules": ["q_proj", "v_proj"],
                "base_model_name_or_path": "smollm2",
                "task_type": "CAUSAL_LM",
            }
        )
    )
    rng = np.random.default_rng(seed)
    save_file(
        {
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": rng.standard_normal(
                (r, 8)
            ).astype(np.float32)
        },
        str(path / ADAPTER_WEIGHTS),
    )
    return path
