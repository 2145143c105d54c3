"""Typed inputs (DESIGN.md §3a): a plain string (style detected by the server) or one of these objects."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field, model_validator

from .base import Request


class EmailInput(Request):
    """A raw RFC 822 / MIME message as received (headers and body); `encoding: base64` when `email` holds
    the base64 of the message's bytes (8-bit bodies in any charset arrive byte for byte)."""

    email: str = Field(description="the raw message (RFC 822 / MIME), or its base64 when encoding=base64")
    encoding: Literal["text", "base64"] = "text"

    @model_validator(mode="after")
    def _decodable(self) -> EmailInput:
        _ = self.raw  # validate base64 here, so a bad one is a 422
        return self

    @property
    def raw(self) -> bytes | str:
        if self.encoding == "text":
            return self.email
        try:
            return base64.b64decode(self.email, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("email is not valid base64 (encoding=base64)") from None


class SmsInput(Request):
    """An SMS; `sender` is reported back, never shown to the model."""

    sms: str = Field(description="the SMS text")
    sender: str | None = Field(
        default=None,
        max_length=256,
        description="sender number or name: reported back, not shown to the model",
    )


class UrlInput(Request):
    url: str = Field(description="one URL")


InputItem = str | EmailInput | SmsInput | UrlInput


class KServeInstance(Request):
    text: str


KServeItem = str | KServeInstance | EmailInput | SmsInput | UrlInput


def main_text(item: InputItem) -> str:
    """The field that must not be blank."""
    if isinstance(item, EmailInput):
        return item.email
    if isinstance(item, SmsInput):
        return item.sms
    if isinstance(item, UrlInput):
        return item.url
    return item


def check_texts(items: list[InputItem], field: str) -> list[InputItem]:
    if not items:
        raise ValueError(f"{field} must contain at least one text")
    empty = [i for i, t in enumerate(items) if not main_text(t).strip()]
    if empty:
        raise ValueError(f"{field}[{empty[0]}] is empty; every text needs at least one non-space character")
    return items


def check_text(item: InputItem) -> InputItem:
    if not main_text(item).strip():
        raise ValueError("input is empty; it needs at least one non-space character")
    return item


def kserve_items(instances: list[KServeItem]) -> list[InputItem]:
    return [i.text if isinstance(i, KServeInstance) else i for i in instances]
