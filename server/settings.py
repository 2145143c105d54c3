"""Server configuration: one pydantic-settings object, read from ``PHISHLENS_*`` env vars (STYLE.md H4).

Never read at import: `create_app(settings)` takes it explicitly, and `get_settings()` builds (and
caches) the env-derived default only when asked. List fields accept JSON (``'["a","b"]'``) or a
comma-separated string (``a,b``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


def _split_list(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("["):
            return json.loads(s)
        return [part.strip() for part in s.split(",") if part.strip()]
    return v


class Settings(BaseSettings):
    """Everything the server needs to start; env prefix ``PHISHLENS_``."""

    model_config = SettingsConfigDict(env_prefix="PHISHLENS_", use_attribute_docstrings=True,
                                      extra="ignore", validate_default=True)

    host: str = "127.0.0.1"
    """Interface to bind; keep loopback unless a proxy or the container network needs more."""
    port: int = Field(default=8000, ge=1, le=65535)
    """TCP port to listen on."""
    backend: Literal["auto", "vllm", "hf"] = "auto"
    """Inference engine: `vllm`, `hf` (transformers + peft), or `auto` (vllm when importable)."""
    base_model: str = "smollm2"
    """Base model: an embedded name (`smollm2`, `gemma3-270m`), a local HF directory or a hub id."""
    adapter_roots: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [REPO_ROOT / "adapters"])
    """Directories bundles may be loaded from; anything resolving outside them is refused."""
    adapters: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["default"])
    """Bundles (names under a root, or paths inside a root) to load at start-up."""
    default_adapter: str = "default"
    """Adapter that serves requests naming none."""
    max_loaded_adapters: int = Field(default=8, ge=1)
    """Cap on adapters loaded at once (also bounded by the engine's own limit)."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 above)."""
    max_batch: int = Field(default=64, ge=1)
    """Most texts in one request (413 above)."""
    max_chars: int = Field(default=100_000, ge=1)
    """Most characters in one text (413 above)."""
    max_queue: int = Field(default=256, ge=1)
    """Most texts in flight across all requests before new ones get 429."""
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """When set, classify/adapter-list/KServe routes need one of these (Bearer or X-API-Key)."""
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """When set, admin routes (load/unload adapters) need one; when empty they answer 403."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Weights dtype for the engine (fp32 on CPUs without avx512_bf16)."""
    vllm_kv_cache_gb: float = Field(default=1.0, gt=0)
    """vLLM KV-cache size in GiB (CPU backend)."""
    max_model_len: int = Field(default=1024, ge=16)
    """Longest prompt (template + text tokens) the engine accepts."""
    log_json: bool = False
    """Emit one JSON object per log line."""

    @field_validator("adapter_roots", "adapters", "api_keys", "admin_keys", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("adapter_roots")
    @classmethod
    def _abs_roots(cls, v: list[Path]) -> list[Path]:
        return [p.expanduser().resolve() for p in v]

    @model_validator(mode="after")
    def _keys_not_empty(self) -> "Settings":
        for field in ("api_keys", "admin_keys"):
            if any(not k.get_secret_value() for k in getattr(self, field)):
                raise ValueError(f"{field} must not contain empty keys")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings from the environment, built on first use."""
    return Settings()
