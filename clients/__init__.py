"""Python client and `phishlens` CLI for the phishlens server.

Light on purpose: importing this package pulls in httpx and pydantic, never torch, vLLM or the
server (DESIGN.md §2). The CLI (`phishlens.clients.cli`) imports the server and training packages
only inside the commands that need them.

    from phishlens.clients import PhishlensClient
    with PhishlensClient("http://127.0.0.1:8000", api_key="...") as client:
        print(client.classify("Your account is locked, verify at http://...").data[0].label)
"""

from phishlens.clients.client import AsyncPhishlensClient, PhishlensClient, RetryPolicy
from phishlens.clients.errors import (
    AdapterNotFoundError,
    AuthenticationError,
    BackendError,
    BadRequestError,
    ConnectionError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PhishlensError,
    RequestNotFoundError,
    ServerError,
    ValidationError,
    parse_error,
)
from phishlens.clients.types import (
    AdapterInfo,
    AdapterRef,
    ClassifyInput,
    ClassifyResponse,
    ClassifyResult,
    EmailInput,
    HealthStatus,
    ModelInfo,
    PredictResponse,
    SmsInput,
    UrlInput,
    Usage,
)

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
    "EmailInput",
    "ConnectionError",
    "HealthStatus",
    "ModelInfo",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PhishlensClient",
    "PhishlensError",
    "RequestNotFoundError",
    "PredictResponse",
    "RetryPolicy",
    "ServerError",
    "SmsInput",
    "UrlInput",
    "Usage",
    "ValidationError",
    "parse_error",
]
