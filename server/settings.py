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

from phishlens.training.contract.style import STYLES

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

    model_config = SettingsConfigDict(
        env_prefix="PHISHLENS_", use_attribute_docstrings=True, extra="ignore", validate_default=True
    )

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
    max_bundle_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    """Largest adapter bundle (all files together) a load copies and accepts (413 above)."""
    max_bundle_files: int = Field(default=64, ge=4)
    """Most files (and folders) in one adapter bundle (413 above)."""
    adapter_staging_dir: Path | None = None
    """Where loaded bundles are copied (read without following links) and served from; default a
    per-process folder in the system temp dir. Copies are removed on unload."""
    adapters: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["default"])
    """Bundles (names under a root, or paths inside a root) to load at start-up."""
    default_adapter: str = "default"
    """Adapter that serves requests naming none."""
    max_loaded_adapters: int = Field(default=8, ge=1)
    """Cap on adapter names loaded at once. The engine is sized for one more: the spare slot a `replace`
    loads the new weights into while the old ones finish their requests."""
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = 64
    """Highest LoRA rank a bundle may have (vLLM sizes its LoRA buffers for it; the values vLLM accepts).
    A bundle above it is refused at load with a clear error instead of failing inside the engine."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 above)."""
    max_drain_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    """An over-cap body up to this size is read and dropped before the 413, so clients that send the whole
    body before reading (urllib) see the 413 instead of a reset connection; larger ones are cut off."""
    drain_timeout_s: float = Field(default=10.0, ge=0)
    """Longest time spent draining an over-cap body before answering 413 and closing."""
    max_batch: int = Field(default=64, ge=1)
    """Most texts in one request (413 above)."""
    max_chars: int = Field(default=100_000, ge=1)
    """Most characters in one text (413 above)."""
    email_max_parts: int = Field(default=100, ge=1)
    """Most MIME parts in one raw e-mail input (413 above)."""
    email_max_depth: int = Field(default=8, ge=1)
    """Deepest nesting of MIME parts in one raw e-mail input (413 above)."""
    email_max_decoded_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Most bytes of text parts decoded from one raw e-mail (attachments are never decoded; 413 above)."""
    max_queue: int = Field(default=256, ge=1)
    """Most texts in flight across all requests before new ones get 429."""
    engine_check_s: float = Field(default=5.0, gt=0)
    """Seconds between the engine watchdog's health checks."""
    engine_dead_after_s: float = Field(default=60.0, gt=0)
    """An engine unhealthy this long stops the server; `phishlens serve` then exits with status 3 so the
    supervisor restarts it (/ready answers 503 from the first failed check)."""
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    """On SIGTERM: stop accepting connections, let in-flight requests finish for up to this long, then
    exit."""
    keep_alive_s: float = Field(default=75.0, gt=0)
    """Seconds an idle keep-alive connection stays open. Longer than the idle timeout of the client pool or
    load balancer in front (60 s on common ones): a server that closes first races the client's next
    request on that connection, which then fails unanswered (uvicorn's own default is 5 s)."""
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """When set, classify/adapter-list/KServe routes need one of these (Bearer or X-API-Key)."""
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """When set, admin routes (load/unload adapters) need one; when empty they answer 403."""
    explain_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Keys with the `explain` scope (/v1/explain, /v1/probe, KServe explain, plus everything `api_keys` do).
    While empty, `api_keys` also hold that scope; once set, classify keys get 403 there."""
    metrics_require_key: bool = False
    """Require an API key (any scope) on GET /metrics; off by default so Prometheus scrapes without one."""
    audit_log: Path | None = None
    """Append one JSON line per admin request (load/unload, granted or refused) here, besides the
    `phishlens.audit` logger; the key appears only as a short sha256 fingerprint."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Weights dtype for the engine (fp32 on CPUs without avx512_bf16)."""
    vllm_kv_cache_gb: float = Field(default=1.0, gt=0)
    """vLLM KV-cache size in GiB (CPU backend)."""
    onednn_primitive_cache_capacity: int = Field(default=64, ge=0)
    """Entries in oneDNN's process-wide primitive cache (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`; vLLM CPU backend).
    vLLM's CPU matmuls build one oneDNN primitive per weight shape and batch token count (≈0.3 MB each) and
    keep their own small per-shape cache in front of this one, which therefore only hoards them: at
    oneDNN's default of 1024 it held ≈300 MB more (plus the heap fragmentation of their churn) and served
    0 of 264 matmul look-ups in a 6-minute soak (docs/reliability.md, RSS soak)."""
    malloc_trim_interval_s: float = Field(default=30.0, ge=0)
    """Seconds between glibc `malloc_trim(0)` calls that hand freed heap pages back to the OS (0: never).
    Without it the free-but-resident part of the heap grew 15-20 MB/min under steady load (server/memory.py,
    docs/reliability.md); no effect when tcmalloc or jemalloc is preloaded."""
    vllm_block_size: int | None = Field(default=None, ge=16)
    """vLLM KV block size in tokens, the prefix cache's granularity (None: vLLM's default, 128 on CPU).
    Explanations gain from small blocks: their perturbations share prefixes shorter than 128 tokens."""
    max_model_len: int = Field(default=1024, ge=16)
    """Longest prompt (template + text tokens) the engine accepts."""
    log_json: bool = False
    """Emit one JSON object per log line."""
    probe_max_concurrency: int = Field(default=1, ge=1)
    """POST /v1/probe requests running at once on the probe service's own HF model copy; more get 429."""
    performance_window: int = Field(default=1000, ge=1)
    """Served verdicts per adapter in the label-free (CBPE) expected precision/recall."""
    feedback_window: int = Field(default=500, ge=1)
    """Labelled verdicts per adapter (POST /v1/feedback) in the live precision/recall gauges."""
    feedback_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long after a /v1/classify answer its id accepts feedback (404 after; from the time signed in
    the id, so it holds across replicas and restarts: keep replica clocks in sync)."""
    feedback_max_items: int = Field(default=200_000, ge=1)
    """Most labelled (request, text, adapter) verdicts this replica remembers to answer a repeated label as
    `duplicate`/`conflict` instead of counting it again, oldest dropped first; never the text."""
    feedback_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """HMAC keys of the signed request ids (services/request_ids.py): the first signs, all verify (rotate by
    prepending). Give every replica the same list so feedback is accepted by any of them and after a
    restart; empty: a random per-process key (feedback only on the replica that answered, until it
    restarts)."""
    feedback_state_dir: Path | None = Path("~/.cache/phishlens/feedback")
    """Where recorded feedback is journaled (fsync'd before the answer) so live precision/recall, the feedback
    counters and duplicate detection survive restarts and `kill -9`; one process per folder (another one logs
    a warning and keeps its state in memory); empty: memory only."""

    routes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """`adapter: "auto"` sends each text to the adapter named here for its style (email, sms, url; the style
    the input pipeline gives or detects); styles without a route go to the default adapter. JSON
    (`{"sms": "specialist-sms"}`) or `style=adapter` pairs (`sms=specialist-sms,url=specialist-url`). A route
    to an adapter that is not loaded answers 404 for the texts of that style."""

    ood_enabled: bool = True
    """Give each classification result `ood` (score, flagged, threshold): how far the text lies from the
    adapter's reference texts (MiniLM embedding, kNN distance; explain/ood.py), for adapters whose bundle
    has a drift reference. Costs one MiniLM pass per distinct text on the request path (README
    "Out-of-distribution flag": the measured latency), which the drift monitor then reuses."""
    ood_flag_rate: float = Field(default=0.05, gt=0.0, lt=0.5)
    """Share of the adapter's own reference texts that would be flagged: sets `ood.threshold`."""

    drift_enabled: bool = True
    """Run the drift monitor (GET /v1/drift, phishlens_drift_* metrics) on served classifications."""
    drift_window: int = Field(default=200, ge=10)
    """Texts per adapter in the sliding drift window (thresholds are calibrated for 100, 200 and 400)."""
    drift_eval_every: int = Field(default=20, ge=1)
    """Recompute the drift statistics after this many new texts per adapter."""
    drift_queue: int = Field(default=256, ge=1)
    """Requests waiting for the drift worker; beyond it their texts are skipped and counted, never
    waited on."""
    drift_state_dir: Path = Path("~/.cache/phishlens/drift")
    """Where drift windows are persisted (atomically, per adapter and bundle sha256) to survive restarts."""
    drift_persist_s: float = Field(default=60.0, gt=0)
    """Seconds between drift state snapshots (also written at shutdown and on adapter unload)."""

    explain_max_evals: int = Field(default=1000, ge=4)
    """Cap on `max_evals` (unique texts scored) one POST /v1/explain may ask for; more get 422."""
    explain_default_max_evals: int = Field(default=300, ge=4)
    """`max_evals` when an explain request names none (clipped to `explain_max_evals`)."""
    explain_concurrency: int = Field(default=2, ge=1)
    """Explanations running at once (each costs up to `max_evals` forward passes); more get 429."""
    explain_max_features: int = Field(default=512, ge=2)
    """Most tokens (at the requested granularity) an explained text may have; longer texts get 413."""
    explain_round_nodes: int = Field(default=5, ge=1)
    """Partition-tree nodes SHAP expands per round (2 texts each). 5 is shap's own schedule: the
    attributions equal a plain ``shap.Explainer``'s; larger rounds batch more but expand other nodes."""
    explain_engine: Literal["auto", "prefix_tree", "backend"] = "auto"
    """What scores the perturbations. ``prefix_tree``: the server's transformers copy of the model on the
    CPU (shared with /v1/probe), running only the tokens after each perturbation's longest
    already-computed prefix (per-token K/V reuse; fastest on a CPU host). ``backend``: each round as one
    batch on the serving engine (vLLM: block-granular prefix cache; no second copy of the weights).
    ``auto``: ``prefix_tree`` without a GPU, ``backend`` with one."""
    explain_tree_chunk_tokens: int = Field(default=384, ge=16)
    """prefix_tree: most new tokens packed into one forward."""
    explain_tree_max_cached_tokens: int = Field(default=32768, ge=256)
    """prefix_tree: tokens of K/V one explanation may keep (then it starts over); bounds its memory."""
    explain_warmup: bool = True
    """Load shap and compile its numba kernels in a thread at start-up (else the first explain pays ≈20 s)."""

    ui_enabled: bool = True
    """Serve the analyst console at /ui (static files calling the public API); false for API-only
    deployments."""
    ui_grafana_url: str | None = Field(default=None, pattern=r"^https?://")
    """Grafana dashboard the console's adapter-health panel links to (e.g. the shipped phishlens
    dashboard)."""

    @field_validator(
        "adapter_roots",
        "adapters",
        "api_keys",
        "admin_keys",
        "explain_keys",
        "feedback_secrets",
        mode="before",
    )
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, v: Any) -> Any:
        if isinstance(v, str):
            s = v.strip()
            if s.startswith("{"):
                return json.loads(s)
            pairs = [part.split("=", 1) for part in s.split(",") if part.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("routes must be JSON or style=adapter pairs separated by commas")
            return {k.strip(): a.strip() for k, a in pairs}
        return v

    @field_validator("routes")
    @classmethod
    def _route_styles(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - set(STYLES))
        if bad:
            raise ValueError(f"routes: unknown style(s) {bad}; styles are {list(STYLES)}")
        if any(not a for a in v.values()):
            raise ValueError("routes: every style needs an adapter name")
        return v

    @field_validator("feedback_state_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("adapter_roots")
    @classmethod
    def _abs_roots(cls, v: list[Path]) -> list[Path]:
        return [p.expanduser().resolve() for p in v]

    @model_validator(mode="after")
    def _keys_not_empty(self) -> Settings:
        keys = {
            "api_keys": self.api_keys,
            "admin_keys": self.admin_keys,
            "explain_keys": self.explain_keys,
            "feedback_secrets": self.feedback_secrets,
        }
        for field, values in keys.items():
            if any(not k.get_secret_value() for k in values):
                raise ValueError(f"{field} must not contain empty keys")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings from the environment, built on first use."""
    return Settings()
