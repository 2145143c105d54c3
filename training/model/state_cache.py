"""Frozen-lower-layer states per text, in memory and optionally on disk across runs.

The states below the LoRA layers are a pure function of (base weights, prompt template, text-token cap,
split layer, text), so they can outlive a process: with ``PHISHLENS_STATE_CACHE=<dir>`` an evaluation or a
training run reuses what an earlier run computed (on 2 CPU cores the lower layers of a 4,400-text mix take
20-40 minutes; an experiment that changes only the LoRA recipe needs none of them again). Files are
safetensors (never pickle), one per text, written atomically; the namespace folder names the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import torch

STATE_CACHE_ENV = "PHISHLENS_STATE_CACHE"


def disk_root() -> Path | None:
    v = os.environ.get(STATE_CACHE_ENV, "")
    return Path(v).expanduser() if v else None


def namespace(base_sha256: str, template: str, max_text_tokens: int, split: int) -> str:
    h = hashlib.sha256(f"{base_sha256}\0{template}\0{max_text_tokens}\0{split}".encode()).hexdigest()
    return f"split{split}-{h[:24]}"


class StateCache(MutableMapping[str, torch.Tensor]):
    """text -> hidden states ``(seq, d_model)`` at the split layer; memory first, then ``root/namespace``."""

    def __init__(self, ns: str, root: Path | None = None) -> None:
        self._mem: dict[str, torch.Tensor] = {}
        self._dir = None if root is None else root / ns

    def _file(self, text: str) -> Path | None:
        if self._dir is None:
            return None
        return (
            self._dir
            / f"{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}.safetensors"
        )

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        if text in self._mem:
            return True
        f = self._file(text)
        return f is not None and f.is_file()

    def __getitem__(self, text: str) -> torch.Tensor:
        if text in self._mem:
            return self._mem[text]
        f = self._file(text)
        if f is None or not f.is_file():
            raise KeyError(text[:40])
        from safetensors.torch import load_file

        t = load_file(str(f))["h"]
        self._mem[text] = t
        return t

    def __setitem__(self, text: str, states: torch.Tensor) -> None:
        self._mem[text] = states
        f = self._file(text)
        if f is None or f.is_file():
            return
        from safetensors.torch import save_file

        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_suffix(f".tmp{os.getpid()}")
            save_file({"h": states.detach().contiguous()}, str(tmp))
            os.replace(tmp, f)
        except OSError:
            pass  # a full or read-only disk only costs recomputation next time

    def __delitem__(self, text: str) -> None:
        self._mem.pop(text, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._mem)

    def __len__(self) -> int:
        return len(self._mem)
