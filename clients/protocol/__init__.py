"""The wire protocol of the phishlens HTTP API, defined once (DESIGN.md §2, §5).

The server validates requests and builds responses with these pydantic models, and both clients parse
answers with them; `errors.ERRORS` is the one table error.type → HTTP status → client exception class.
Pure pydantic: importing it pulls in neither httpx nor FastAPI nor torch (a test checks), so the server
imports it without the client and the client without the server. One module per endpoint family, as
the server's routes are.

Requests reject unknown fields (a 422); responses keep them (`model_extra`), so a newer server that adds
a field does not break an older client.
"""

from .adapters import (
    AdapterCalibration,
    AdapterInfo,
    AdapterList,
    HealthStatus,
    LoadAdapterRequest,
    UnloadResponse,
)
from .base import Label, Request, Response, Style, StyleSource
from .classify import (
    AdapterRef,
    AttachmentInfo,
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    EmailParse,
    OodInfo,
    Usage,
)
from .drift import AdapterDriftInfo, DriftResponse, FeatureStat, PrevalenceInfo, WordShift
from .errors import ERRORS, ErrorBody, ErrorDetail, ErrorKind, parse_error
from .explain import (
    ExplainOptions,
    ExplainRequest,
    ExplainResponse,
    KServeExplainRequest,
    KServeExplainResponse,
)
from .feedback import FeedbackLabel, FeedbackRequest, FeedbackResponse, FeedbackResult
from .inputs import EmailInput, InputItem, KServeInstance, KServeItem, SmsInput, UrlInput
from .kserve import KServeModel, KServePredictRequest, KServePredictResponse
from .probe import ProbeRequest, ProbeResponse

__all__ = [
    "ERRORS",
    "AdapterCalibration",
    "AdapterDriftInfo",
    "AdapterInfo",
    "AdapterList",
    "AdapterRef",
    "AttachmentInfo",
    "ClassifyRequest",
    "ClassifyResponse",
    "ClassifyResult",
    "DriftResponse",
    "EmailInput",
    "EmailParse",
    "ErrorBody",
    "ErrorDetail",
    "ErrorKind",
    "ExplainOptions",
    "ExplainRequest",
    "ExplainResponse",
    "FeatureStat",
    "FeedbackLabel",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackResult",
    "HealthStatus",
    "InputItem",
    "KServeExplainRequest",
    "KServeExplainResponse",
    "KServeInstance",
    "KServeItem",
    "KServeModel",
    "KServePredictRequest",
    "KServePredictResponse",
    "Label",
    "LoadAdapterRequest",
    "OodInfo",
    "PrevalenceInfo",
    "ProbeRequest",
    "ProbeResponse",
    "Request",
    "Response",
    "SmsInput",
    "Style",
    "StyleSource",
    "UnloadResponse",
    "UrlInput",
    "Usage",
    "WordShift",
    "parse_error",
]
