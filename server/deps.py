"""Small accessors routes depend on: the services on `app.state` and the API key checks (STYLE.md H3).

Keys carry scopes: `classify` (PHISHLENS_API_KEYS), `explain` (PHISHLENS_EXPLAIN_KEYS: explain and probe),
`admin` (PHISHLENS_ADMIN_KEYS: everything, and adapter load/unload). /health and /ready need none;
/metrics needs a classify key when PHISHLENS_METRICS_REQUIRE_KEY is set."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import SecretStr

from .backends.base import Backend
from .errors import Forbidden, NotReady, Unauthorized
from .metrics import Metrics
from .registry import AdapterRegistry
from .services.classify import ClassifyService
from .services.drift import DriftMonitor
from .services.explain import ExplainService
from .services.feedback import FeedbackService
from .services.probe import ProbeService
from .settings import Settings

Scope = Literal["classify", "explain", "admin"]


@dataclass
class Runtime:
    """Everything the lifespan opened; present on `app.state.runtime` only while serving."""

    settings: Settings
    backend: Backend
    registry: AdapterRegistry
    classify: ClassifyService
    metrics: Metrics
    feedback: FeedbackService | None = None
    drift: DriftMonitor | None = None
    probe: ProbeService | None = None
    explain: ExplainService | None = None


def get_runtime(request: Request) -> Runtime:
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        raise NotReady("the server is starting or stopping")
    return rt


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return request.headers.get("x-api-key") or None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _matches(key: str, keys: list[SecretStr]) -> bool:
    """Constant time: fixed-length digests compared with hmac.compare_digest against EVERY key, so
    neither the position of the matching key nor the length of a configured key shows in the timing."""
    presented = _digest(key)
    found = False
    for k in keys:
        found |= hmac.compare_digest(presented, _digest(k.get_secret_value()))
    return found


def key_id(key: str) -> str:
    """A short, non-reversible name for a key in the audit log (never the key itself)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def key_scopes(settings: Settings, key: str) -> set[Scope]:
    """Scopes a key holds: admin ⊇ explain ⊇ classify. Classify keys also explain until explain keys
    are configured (scopes are opt-in: PHISHLENS_EXPLAIN_KEYS separates them)."""
    scopes: set[Scope] = set()
    if _matches(key, settings.admin_keys):
        scopes |= {"admin", "explain", "classify"}
    if _matches(key, settings.explain_keys):
        scopes |= {"explain", "classify"}
    if _matches(key, settings.api_keys):
        scopes |= {"classify"} if settings.explain_keys else {"classify", "explain"}
    return scopes


def _require(request: Request, scope: Scope) -> None:
    settings: Settings = request.app.state.settings
    key = _presented_key(request)
    if scope == "admin":
        request.state.audit = key_id(key) if key is not None else "-"  # AuditMiddleware records the outcome
        if not settings.admin_keys:
            raise Forbidden("admin routes are disabled: no admin key is configured (PHISHLENS_ADMIN_KEYS)")
        if key is None:
            raise Unauthorized("missing admin key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
        if "admin" not in key_scopes(settings, key):
            raise Forbidden("this key is not an admin key")
        return
    if not (settings.api_keys or settings.explain_keys):
        return  # no API keys configured: the API is open (start-up logs a warning)
    if key is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    scopes = key_scopes(settings, key)
    if not scopes:
        raise Unauthorized("unknown API key")
    if scope not in scopes:
        raise Forbidden(f"this key lacks the {scope!r} scope")


def require_api_key(request: Request) -> None:
    """Scope `classify`: classify, KServe predict and metadata, adapter list, drift, feedback."""
    _require(request, "classify")


def require_explain(request: Request) -> None:
    """Scope `explain`: /v1/explain, /v1/probe, KServe explain (they reveal more of the model)."""
    _require(request, "explain")


def require_admin(request: Request) -> None:
    """Scope `admin`: load and unload adapters; every attempt is written to the audit log."""
    _require(request, "admin")


def require_metrics_key(request: Request) -> None:
    if request.app.state.settings.metrics_require_key:
        _require(request, "classify")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiKey = Depends(require_api_key)
ExplainKey = Depends(require_explain)
AdminKey = Depends(require_admin)
MetricsKey = Depends(require_metrics_key)
