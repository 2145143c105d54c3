"""Python client and `phishlens` CLI for the phishlens server.

Light on purpose: `phishlens.clients.protocol` (the wire models and error table the server shares) is
pure pydantic, and the client's names below load httpx on first use (PEP 562), so the server can import
the protocol without the client. Never torch, vLLM or the server (DESIGN.md §2); the CLI
(`phishlens.clients.cli`) imports the server and training packages only inside the commands that need them.

    from phishlens.clients import PhishlensClient
    with PhishlensClient("http://127.0.0.1:8000", api_key="...") as client:
        print(client.classify("Your account is locked, verify at http://...").data[0].label)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_CLIENT = ("AsyncPhishlensClient", "PhishlensClient", "RetryPolicy", "ClassifyInput", "email_input")
_PROTOCOL = (
    "AdapterInfo",
    "AdapterRef",
    "ClassifyResponse",
    "ClassifyResult",
    "EmailInput",
    "HealthStatus",
    "KServeModel",
    "KServePredictResponse",
    "SmsInput",
    "UrlInput",
    "Usage",
    "parse_error",
)
_ERRORS = (
    "AdapterNotFoundError",
    "AuthenticationError",
    "BackendError",
    "BadRequestError",
    "ConnectionError",
    "HTTPError",
    "InternalServerError",
    "MethodNotAllowedError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PhishlensError",
    "RequestNotFoundError",
    "ServerError",
    "ValidationError",
)
_WHERE = {
    **{n: "phishlens.clients.client" for n in _CLIENT},
    **{n: "phishlens.clients.protocol" for n in _PROTOCOL},
    **{n: "phishlens.clients.protocol.errors" for n in _ERRORS},
}
__all__ = [
    "AdapterInfo",
    "AdapterNotFoundError",
    "AdapterRef",
    "AsyncPhishlensClient",
    "AuthenticationError",
    "BackendError",
    "BadRequestError",
    "ClassifyInput",
    "ClassifyResponse",
    "ClassifyResult",
    "ConnectionError",
    "EmailInput",
    "HTTPError",
    "HealthStatus",
    "InternalServerError",
    "KServeModel",
    "KServePredictResponse",
    "MethodNotAllowedError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PhishlensClient",
    "PhishlensError",
    "RequestNotFoundError",
    "RetryPolicy",
    "ServerError",
    "SmsInput",
    "UrlInput",
    "Usage",
    "ValidationError",
    "email_input",
    "parse_error",
]

if TYPE_CHECKING:
    from phishlens.clients.client import (
        AsyncPhishlensClient,
        ClassifyInput,
        PhishlensClient,
        RetryPolicy,
        email_input,
    )
    from phishlens.clients.protocol import (
        AdapterInfo,
        AdapterRef,
        ClassifyResponse,
        ClassifyResult,
        EmailInput,
        HealthStatus,
        KServeModel,
        KServePredictResponse,
        SmsInput,
        UrlInput,
        Usage,
        parse_error,
    )
    from phishlens.clients.protocol.errors import (
        AdapterNotFoundError,
        AuthenticationError,
        BackendError,
        BadRequestError,
        ConnectionError,
        HTTPError,
        InternalServerError,
        MethodNotAllowedError,
        NotFoundError,
        NotReadyError,
        OverloadedError,
        PayloadTooLargeError,
        PermissionDeniedError,
        PhishlensError,
        RequestNotFoundError,
        ServerError,
        ValidationError,
    )


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
