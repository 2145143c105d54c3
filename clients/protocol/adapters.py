"""Adapter management (GET/POST /v1/adapters, DELETE /v1/adapters/{name}) and the health bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .base import Request, Response
from .classify import SHA

_ADAPTER_EXAMPLE = {
    "name": "default",
    "sha256": SHA,
    "default": True,
    "base_model": "smollm2-135m-instruct",
    "labels": ["phishing", "legitimate"],
    "created": "2026-11-20T14:03:11Z",
    "loaded_at": 1795000000.0,
    "calibration": {"threshold": 0.5, "uncertain_low": 0.4, "uncertain_high": 0.6, "temperature": 1.3},
    "metrics": {
        "test": {
            "sms": {"f1": 0.99, "precision": 0.99, "recall": 0.98, "roc_auc": 0.999, "fpr": 0.01, "n": 240}
        },
        "unseen": {"sms_smishtank": {"f1": 0.97, "n": 120}},
    },
}


class AdapterCalibration(Response):
    """How a served score becomes a label: phishing when score >= threshold; uncertain inside the band."""

    threshold: float
    uncertain_low: float
    uncertain_high: float
    temperature: float


class AdapterInfo(Response):
    """An adapter the server hosts (`GET /v1/adapters` entries, `POST /v1/adapters` answer)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ADAPTER_EXAMPLE]})

    name: str
    sha256: str
    default: bool
    base_model: str
    labels: list[str]
    created: str
    loaded_at: float
    calibration: AdapterCalibration
    metrics: dict[str, Any] = Field(
        description="the bundle manifest's metrics: test.<style>, unseen.<source>, cross_domain"
    )


class AdapterList(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [
                        _ADAPTER_EXAMPLE,
                        {**_ADAPTER_EXAMPLE, "name": "specialist-sms", "default": False, "metrics": {}},
                    ],
                }
            ]
        }
    )

    object: Literal["list"] = "list"
    data: list[AdapterInfo]


class LoadAdapterRequest(Request):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"path": "specialist-sms"},
                {"path": "/srv/adapters/sms-v2", "name": "sms"},
                {"path": "/srv/adapters/sms-v3", "name": "sms", "replace": True},
            ]
        }
    )

    path: str = Field(min_length=1, description="bundle name under an adapter root, or a path inside one")
    name: str | None = Field(default=None, description="serve it under this name (default: manifest name)")
    replace: bool = Field(
        default=False,
        description="if an adapter of this name is loaded, swap in these weights without a gap: requests "
        "admitted before the swap finish on the old weights, later ones get the new (default: refuse, 400)",
    )


class UnloadResponse(Response):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "specialist-sms", "unloaded": True}]})

    name: str
    unloaded: bool = True


class HealthStatus(Response):
    """`GET /health` and `GET /ready` bodies: `status` plus what the server chooses to report."""

    status: str | None = None
