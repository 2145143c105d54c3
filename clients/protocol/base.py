"""Base classes of the wire models: requests reject unknown fields, responses keep them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Label = Literal["phishing", "legitimate"]
Style = Literal["email", "sms", "url"]
StyleSource = Literal["given", "detected"]


class Request(BaseModel):
    """A request body: an unknown field is a 422, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """A response body: fields a newer server adds are kept (`model_extra`), so an older client still
    parses."""

    model_config = ConfigDict(extra="allow")
