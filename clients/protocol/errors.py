"""The one error table of the HTTP API: `error.type` → HTTP status → the exception the client raises.

Every non-2xx answer carries `{"error": {"type", "message"}}` (`ErrorBody`). The server's exceptions take
their status from `ERRORS` by type (server/errors.py), and `parse_error` maps an answer back to a class on
`error.type` first (two 404s mean different things), on the status second. Client-side hierarchy::

    PhishlensError              every client error; `.status` (int | None), `.type`, `.message`
    ├── BadRequestError         400  bad_request: malformed request (bad JSON, refused bundle)
    ├── AuthenticationError     401  unauthorized: missing or wrong API key
    ├── PermissionDeniedError   403  forbidden: key lacks the right (admin routes, admin disabled)
    ├── NotFoundError           404  not_found: no such route
    │   ├── AdapterNotFoundError     adapter_not_found: unknown adapter / model
    │   └── RequestNotFoundError     request_not_found: feedback for an unknown or expired request id
    ├── MethodNotAllowedError   405  method_not_allowed
    ├── PayloadTooLargeError    413  payload_too_large: body, text count or text length over the caps
    ├── ValidationError         422  validation_error: well-formed JSON that fails validation
    ├── BackendError            424  backend_failure: the inference engine failed on this request
    ├── OverloadedError         429  overloaded: queue full; retried with backoff by the client
    ├── HTTPError               any  http_error: another HTTP-level refusal
    ├── NotReadyError           503  not_ready: engine starting or golden checks failing; retried too
    ├── ServerError             5xx  any other server-side failure
    │   └── InternalServerError 500  internal_error: a bug on the server
    └── ConnectionError         no HTTP response at all (refused, DNS, timeout); `.status` is None

A status the server does not document (e.g. 418) raises `PhishlensError` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable error type, e.g. `validation_error`")
    message: str = Field(description="what went wrong, safe to show; never echoes request text")


class ErrorBody(BaseModel):
    """The one error body every non-2xx response carries."""

    error: ErrorDetail


class PhishlensError(Exception):
    """Base class; `status` is the HTTP status (None without a response), `type` the server's error type."""

    default_type = "error"

    def __init__(
        self, message: str, *, status: int | None = None, type: str | None = None, payload: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type or self.default_type
        self.payload = payload  # the decoded body, for debugging

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.type}: {self.message}"

    @property
    def is_client_error(self) -> bool:
        """True for 4xx answers: the request itself was refused and resending it will not help."""
        return self.status is not None and 400 <= self.status < 500


class BadRequestError(PhishlensError):
    default_type = "bad_request"


class AuthenticationError(PhishlensError):
    default_type = "unauthorized"


class PermissionDeniedError(PhishlensError):
    default_type = "forbidden"


class NotFoundError(PhishlensError):
    default_type = "not_found"


class AdapterNotFoundError(NotFoundError):
    default_type = "adapter_not_found"


class RequestNotFoundError(NotFoundError):
    default_type = "request_not_found"


class MethodNotAllowedError(PhishlensError):
    default_type = "method_not_allowed"


class PayloadTooLargeError(PhishlensError):
    default_type = "payload_too_large"


class ValidationError(PhishlensError):
    default_type = "validation_error"


class BackendError(PhishlensError):
    default_type = "backend_failure"


class OverloadedError(PhishlensError):
    default_type = "overloaded"


class HTTPError(PhishlensError):
    default_type = "http_error"


class ServerError(PhishlensError):
    default_type = "server_error"


class InternalServerError(ServerError):
    default_type = "internal_error"


class NotReadyError(PhishlensError):
    default_type = "not_ready"


class ConnectionError(PhishlensError):  # mirrors httpx naming (shadows the builtin): import it qualified
    default_type = "connection_error"


@dataclass(frozen=True)
class ErrorKind:
    """One row of the table: what the server sends and what the client raises for it."""

    type: str
    status: int | None  # None: the status varies (http_error carries Starlette's own)
    client: type[PhishlensError]
    description: str  # for the OpenAPI `responses` of every route


ERRORS: dict[str, ErrorKind] = {
    k.type: k
    for k in (
        ErrorKind("bad_request", 400, BadRequestError, "malformed request (bad JSON, refused bundle)"),
        ErrorKind("unauthorized", 401, AuthenticationError, "missing or unknown API key"),
        ErrorKind("forbidden", 403, PermissionDeniedError, "the key lacks the scope this route needs"),
        ErrorKind("adapter_not_found", 404, AdapterNotFoundError, "unknown adapter"),
        ErrorKind(
            "request_not_found", 404, RequestNotFoundError, "feedback for an unknown or expired request id"
        ),
        ErrorKind("not_found", 404, NotFoundError, "unknown route"),
        ErrorKind("method_not_allowed", 405, MethodNotAllowedError, "the route does not take this method"),
        ErrorKind("payload_too_large", 413, PayloadTooLargeError, "body, batch or text over the caps"),
        ErrorKind("validation_error", 422, ValidationError, "well-formed JSON that fails validation"),
        ErrorKind("backend_failure", 424, BackendError, "the inference engine failed this request"),
        ErrorKind("overloaded", 429, OverloadedError, "overloaded; retry after `Retry-After`"),
        ErrorKind(
            "internal_error", 500, InternalServerError, "unexpected server error (a bug: please report)"
        ),
        ErrorKind("not_ready", 503, NotReadyError, "not ready (starting, stopping, engine down)"),
        ErrorKind("http_error", None, HTTPError, "another HTTP-level refusal"),
    )
}
"""Every error type the server emits (a test checks the server's exceptions and handlers against it)."""

STATUS_TYPES: dict[int, str] = {}
"""status → the type a bare HTTP status stands for (the first row with that status: 404 → adapter_not_found
for older servers whose body has no type; Starlette's own 404 is typed `not_found` by the server)."""
for _kind in ERRORS.values():
    if _kind.status is not None:
        STATUS_TYPES.setdefault(_kind.status, _kind.type)

RETRYABLE_STATUSES = frozenset({429, 503})


def parse_error(status: int, payload: Any) -> PhishlensError:
    """Map a non-2xx response (status, decoded JSON body or raw text) to the matching exception.

    Reads the documented body `{"error": {"type", "message"}}`, and tolerates FastAPI's default
    `{"detail": ...}` and non-JSON bodies (a proxy's HTML page) so the message is never lost.
    """
    err_type: str | None = None
    message: str | None = None
    if isinstance(payload, dict):
        body = payload.get("error")
        if isinstance(body, dict):
            err_type = _str_or_none(body.get("type"))
            message = _str_or_none(body.get("message"))
        elif isinstance(body, str):
            message = body
        if message is None and "detail" in payload:
            message = _detail_message(payload["detail"])
    elif isinstance(payload, str) and payload.strip():
        message = payload.strip()[:500]
    kind = ERRORS.get(err_type or "") or ERRORS.get(STATUS_TYPES.get(status, ""))
    cls = kind.client if kind else (ServerError if status >= 500 else PhishlensError)
    return cls(message or f"HTTP {status}", status=status, type=err_type, payload=payload)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _detail_message(detail: Any) -> str:
    """Flatten FastAPI's `detail` (a string or a list of {loc, msg}) into one line."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
