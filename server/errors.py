"""One exception hierarchy, one error body, one place mapping both to HTTP (DESIGN.md §5, STYLE.md H5).

Every error the API returns has the body ``{"error": {"type": str, "message": str}}`` (`ErrorBody` of the
wire protocol). Each exception names its type; its status comes from the protocol's one table
(`phishlens.clients.protocol.errors.ERRORS`: type → status → the client's exception class):

    PhishlensError            base: status 500, type "internal_error"
    ├── BadRequest            400 "bad_request"        (malformed JSON, refused bundle, adapter cap)
    ├── Unauthorized          401 "unauthorized"       (missing or unknown API key)
    ├── Forbidden             403 "forbidden"          (admin route without an admin key)
    ├── AdapterNotFound       404 "adapter_not_found"
    ├── PayloadTooLarge       413 "payload_too_large"  (body, batch or per-text caps)
    ├── ValidationFailed      422 "validation_error"
    ├── BackendFailure        424 "backend_failure"    (the engine failed a request)
    ├── Overloaded            429 "overloaded"         (in-flight queue full)
    └── NotReady              503 "not_ready"
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from phishlens.clients.protocol.errors import ERRORS, STATUS_TYPES, ErrorBody

logger = logging.getLogger(__name__)


class PhishlensError(Exception):
    """Base of every error the API maps to a status; the message is safe to show to callers.

    A subclass sets `type` only: its `status` is the protocol table's (an unknown type fails at import)."""

    status: int = 500
    type: str = "internal_error"
    headers: dict[str, str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        status = ERRORS[cls.type].status
        if status is None:
            raise TypeError(f"error type {cls.type} has no fixed status")
        cls.status = status

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PhishlensError):
    type = "bad_request"


class Unauthorized(PhishlensError):
    type = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(PhishlensError):
    type = "forbidden"


class AdapterNotFound(PhishlensError):
    type = "adapter_not_found"


class PayloadTooLarge(PhishlensError):
    type = "payload_too_large"


class ValidationFailed(PhishlensError):
    type = "validation_error"


class BackendFailure(PhishlensError):
    type = "backend_failure"


class Overloaded(PhishlensError):
    type = "overloaded"
    headers = {"Retry-After": "1"}


class NotReady(PhishlensError):
    type = "not_ready"


# Starlette's own HTTPExceptions (unknown route, wrong method): typed by status; 404 is a route here
_TYPE_BY_STATUS = {**STATUS_TYPES, 404: "not_found"}

_DOCUMENTED: dict[int, list[str]] = {}
for _kind in ERRORS.values():
    if _kind.status is not None and _kind.status != 405:  # 405: FastAPI only answers it for unlisted methods
        _DOCUMENTED.setdefault(_kind.status, []).append(f"`{_kind.type}`: {_kind.description}")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": "; ".join(texts)} for code, texts in sorted(_DOCUMENTED.items())
}
"""OpenAPI `responses` for every API route: each error status the contract uses, with the one body."""


def error_body(type_: str, message: str) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message}}


def error_response(exc: PhishlensError, headers: dict[str, str] | None = None) -> JSONResponse:
    merged = {**(exc.headers or {}), **(headers or {})} or None
    return JSONResponse(error_body(exc.type, exc.message), status_code=exc.status, headers=merged)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def validation_message(errors: list[dict[str, Any]]) -> str:
    msgs = []
    for err in errors[:5]:
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        msgs.append(f"{_loc(tuple(err.get('loc', ())))}: {msg}")
    if len(errors) > 5:
        msgs.append(f"... and {len(errors) - 5} more")
    return "; ".join(msgs)


async def _on_phishlens(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PhishlensError)
    if exc.status == 424:  # not 503: readiness probes would flood the log
        logger.warning("%s: %s", exc.type, exc.message)
    return error_response(exc)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(BadRequest("request body is not valid JSON"))
    return error_response(ValidationFailed(validation_message(errors)))


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    type_ = _TYPE_BY_STATUS.get(exc.status_code, "http_error")  # http_error: any other status
    return JSONResponse(
        error_body(type_, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the one error body for our errors, FastAPI's and Starlette's. Anything unexpected is
    answered by `middleware.CatchAllMiddleware` (a handler for `Exception` here would log each traceback
    twice: Starlette re-raises to the server after calling it)."""
    app.add_exception_handler(PhishlensError, _on_phishlens)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
