"""Small accessors routes depend on: the services on `app.state` and the API/admin key checks (STYLE.md H3)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

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


def _matches(key: str, keys: list[SecretStr]) -> bool:
    found = False
    for k in keys:  # compare against all: timing does not reveal which key matched
        found |= hmac.compare_digest(key.encode(), k.get_secret_value().encode())
    return found


def require_api_key(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        return
    key = _presented_key(request)
    if key is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    if not _matches(key, settings.api_keys + settings.admin_keys):
        raise Unauthorized("unknown API key")


def require_admin(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if not settings.admin_keys:
        raise Forbidden("admin routes are disabled: no admin key is configured (PHISHLENS_ADMIN_KEYS)")
    key = _presented_key(request)
    if key is None:
        raise Unauthorized("missing admin key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    if not _matches(key, settings.admin_keys):
        raise Forbidden("this key is not an admin key")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin)
