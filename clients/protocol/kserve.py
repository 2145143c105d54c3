"""KServe V1 inference protocol: `:predict` and model metadata (an adapter is a KServe "model")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import Response
from .classify import REQUEST_ID, SHA, ClassifyResult
from .inputs import InputItem, KServeItem, check_texts, kserve_items


class KServePredictRequest(BaseModel):
    """Unknown fields are ignored, as KServe servers do (V1 clients may send `parameters`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instances": [
                        {"text": "Your parcel is held: pay 1.99 at http://parcel.example/x"},
                        "see you at 6",
                    ]
                },
                {"instances": [{"url": "paypal.com.secure.example/login"}], "return_text": True},
            ]
        }
    )

    instances: list[KServeItem] = Field(
        description='texts ({"text": ...} or plain strings, style detected) or typed inputs ({"email": ...}, '
        '{"sms": ...}, {"url": ...})'
    )
    return_text: bool = Field(
        default=False, description="return the exact text the model saw with each result"
    )

    @property
    def items(self) -> list[InputItem]:
        return kserve_items(self.instances)

    @model_validator(mode="after")
    def _check(self) -> KServePredictRequest:
        check_texts(self.items, "instances")
        return self


class KServePredictResponse(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": REQUEST_ID,
                    "predictions": [
                        {
                            "index": 0,
                            "label": "phishing",
                            "probs": {"phishing": 0.97, "legitimate": 0.03},
                            "score": 0.97,
                            "uncertain": False,
                            "truncated": False,
                            "adapter": {"name": "default", "sha256": SHA},
                            "style": "sms",
                            "style_source": "detected",
                            "text": None,
                            "email": None,
                        }
                    ],
                }
            ]
        }
    )

    predictions: list[ClassifyResult]
    id: str = Field(
        description="signed request id: POST /v1/feedback takes it, on any replica (not in KServe's "
        "V1 schema; KServe clients ignore extra fields)"
    )


class KServeModel(Response):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "default",
                    "ready": True,
                    "sha256": SHA,
                    "base_model": "smollm2-135m-instruct",
                    "platform": "phishlens",
                }
            ]
        }
    )

    name: str
    ready: bool
    sha256: str
    base_model: str
    platform: str = "phishlens"
