"""Errors the phishlens client raises: one class per HTTP status the server documents (DESIGN.md §5).

Hierarchy::

    PhishlensError              every client error; `.status` (int | None), `.type`, `.message`
    ├── BadRequestError         400  malformed request (bad JSON, wrong shape)
    ├── AuthenticationError     401  missing or wrong API key
    ├── PermissionDeniedError   403  key lacks the right (admin routes, admin disabled)
    ├── AdapterNotFoundError    404  unknown adapter / model / route
    ├── RequestNotFoundError    404  feedback for an unknown or expired request id (`request_not_found`)
    ├── PayloadTooLargeError    413  body, text count or text length over the server's caps
    ├── ValidationError         422  well-formed JSON that fails validation
    ├── OverloadedError         429  queue full; retried with backoff by the client
    ├── NotReadyError           503  engine starting or golden checks failing; retried too
    ├── BackendError            424  the inference engine failed on this request
    ├── ServerError             5xx  any other server-side failure
    └── ConnectionError         no HTTP response at all (refused, DNS, timeout); `.status` is None

A status the server does not document (e.g. 405) raises `PhishlensError` itself. `parse_error` is the
one place that maps a response to a class, on the server's `error.type` first (two 404s mean different
things) and the status second; the sync and async clients both go through it.
"""

from __future__ import annotations

from typing import Any


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


class AdapterNotFoundError(PhishlensError):
    default_type = "adapter_not_found"


class RequestNotFoundError(PhishlensError):
    default_type = "request_not_found"


class PayloadTooLargeError(PhishlensError):
    default_type = "payload_too_large"


class ValidationError(PhishlensError):
    default_type = "validation_error"


class OverloadedError(PhishlensError):
    default_type = "overloaded"


class NotReadyError(PhishlensError):
    default_type = "not_ready"


class BackendError(PhishlensError):
    default_type = "backend_failure"


class ServerError(PhishlensError):
    default_type = "server_error"


class ConnectionError(PhishlensError):  # noqa: A001 - mirrors httpx naming; import it qualified
    default_type = "connection_error"


STATUS_ERRORS: dict[int, type[PhishlensError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: AdapterNotFoundError,
    413: PayloadTooLargeError,
    422: ValidationError,
    424: BackendError,
    429: OverloadedError,
    503: NotReadyError,
}

# Error types whose class is not the status's default (matched before the status).
TYPE_ERRORS: dict[str, type[PhishlensError]] = {
    "request_not_found": RequestNotFoundError,
}

RETRYABLE_STATUSES = frozenset({429, 503})


def parse_error(status: int, payload: Any) -> PhishlensError:
    """Map a non-2xx response (status, decoded JSON body or raw text) to the matching exception.

    Reads the documented body `{"error": {"type", "message"}}`, and tolerates FastAPI's default
    `{"detail": ...}` and non-JSON bodies (a proxy's HTML page) so the message is never lost.
    """
    cls = STATUS_ERRORS.get(status) or (ServerError if status >= 500 else PhishlensError)
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
    if err_type in TYPE_ERRORS:
        cls = TYPE_ERRORS[err_type]
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
