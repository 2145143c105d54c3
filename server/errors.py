"""One exception hierarchy, one error body, one place mapping both to HTTP (DESIGN.md §5, STYLE.md H5).

Every error the API returns has the body ``{"error": {"type": str, "message": str}}``:

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
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class PhishlensError(Exception):
    """Base of every error the API maps to a status; the message is safe to show to callers."""

    status: int = 500
    type: str = "internal_error"
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PhishlensError):
    status, type = 400, "bad_request"


class Unauthorized(PhishlensError):
    status, type = 401, "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(PhishlensError):
    status, type = 403, "forbidden"


class AdapterNotFound(PhishlensError):
    status, type = 404, "adapter_not_found"


class PayloadTooLarge(PhishlensError):
    status, type = 413, "payload_too_large"


class ValidationFailed(PhishlensError):
    status, type = 422, "validation_error"


class BackendFailure(PhishlensError):
    status, type = 424, "backend_failure"


class Overloaded(PhishlensError):
    status, type = 429, "overloaded"
    headers = {"Retry-After": "1"}


class NotReady(PhishlensError):
    status, type = 503, "not_ready"


_TYPE_BY_STATUS = {cls.status: cls.type for cls in (BadRequest, Unauthorized, Forbidden, AdapterNotFound,
                                                     PayloadTooLarge, ValidationFailed, BackendFailure,
                                                     Overloaded, NotReady)}
_TYPE_BY_STATUS.update({405: "method_not_allowed", 404: "not_found"})


class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable error type, e.g. `validation_error`")
    message: str = Field(description="what went wrong, safe to show; never echoes request text")


class ErrorBody(BaseModel):
    """The one error body every non-2xx response carries."""

    error: ErrorDetail


_DOCUMENTED = {400: "malformed request (bad JSON, refused bundle)", 401: "missing or unknown API key",
               403: "the key lacks the scope this route needs", 404: "unknown adapter or route",
               413: "body, batch or text over the caps", 422: "well-formed JSON that fails validation",
               424: "the inference engine failed this request", 429: "overloaded; retry after `Retry-After`",
               500: "unexpected server error (a bug: please report)", 503: "not ready (starting, stopping, engine down)"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _DOCUMENTED.items()}
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
    type_ = _TYPE_BY_STATUS.get(exc.status_code, "http_error")
    return JSONResponse(error_body(type_, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    """Register the one error body for our errors, FastAPI's and Starlette's. Anything unexpected is
    answered by `middleware.CatchAllMiddleware` (a handler for `Exception` here would log each traceback
    twice: Starlette re-raises to the server after calling it)."""
    app.add_exception_handler(PhishlensError, _on_phishlens)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
