"""Signed, self-describing classify request ids (DESIGN.md §6a): feedback works on any replica, after
restarts.

A `/v1/classify` answer's `id` carries what `POST /v1/feedback` needs to turn a true label into an outcome —
when it was served and, per (text, adapter) verdict, the adapter's name and bundle sha256, P(phishing) and
the predicted label — never the text. An HMAC-SHA256 over those bytes with a secret every replica shares
(`feedback_secrets`) makes the id unforgeable, so whichever replica receives the feedback trusts the verdicts
without having served them, and without a shared store.

Wire form: ``clf-`` + base64url(payload ‖ mac[:16]), no padding. Payload, big-endian:

    u8 version (1) | u32 issued (unix s) | 8 B nonce | u8 n_adapters | n_adapters × (u8 len, name utf-8,
    32 B sha256) | u16 n_verdicts | n_verdicts × (u16 text index, u8 adapter slot, u16 score)

`score` packs the predicted label in its top bit (1 = phishing) and round(P(phishing) × 32767) below it,
so the label is the one served even when the probability sits on the threshold. The nonce keeps two equal
answers in the same second distinct (feedback de-duplication is keyed by id).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import SecretStr

PREFIX = "clf-"
VERSION = 1
MAC_BYTES = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows truncation to >= half the output)
_DOMAIN = b"phishlens/request-id/v1\x00"  # the key signs nothing else
_HEAD = struct.Struct(">BI8sB")
_VERDICT = struct.Struct(">HBH")
_SCORE_MAX = 0x7FFF
_PHISHING_BIT = 0x8000


class RequestIdRejected(ValueError):
    """The id is malformed, was signed with another secret or altered (reason in the message)."""


@dataclass(frozen=True)
class SignedVerdict:
    index: int  # text position in the classify request
    adapter: str
    adapter_sha256: str
    p_phishing: float  # as served, to 1/32767
    predicted: str  # "phishing" | "legitimate"


@dataclass(frozen=True)
class SignedRequest:
    issued: int  # unix seconds
    verdicts: list[SignedVerdict]
    mac: bytes  # identifies the request (the de-duplication key)


@lru_cache(maxsize=1)
def _process_key() -> bytes:
    """Used when no secret is configured: ids then verify only in this process, until it restarts."""
    return secrets.token_bytes(32)


class RequestIdCodec:
    """Issues and verifies signed request ids; the first key signs, every key verifies (rotation)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(k) == 0 for k in keys):
            raise ValueError("a request-id codec needs at least one non-empty key")
        self.keys = list(keys)

    @classmethod
    def from_secrets(cls, secrets_: Sequence[SecretStr]) -> RequestIdCodec:
        keys = [s.get_secret_value().encode() for s in secrets_]
        return cls(keys or [_process_key()])

    @property
    def shared(self) -> bool:
        """False when ids are signed with a per-process key (no `feedback_secrets` configured)."""
        return self.keys[0] != _process_key()

    def issue(self, verdicts: Sequence[SignedVerdict], issued: int) -> str:
        slots: dict[str, int] = {}
        shas: list[tuple[str, str]] = []
        for v in verdicts:
            if v.adapter not in slots:
                slots[v.adapter] = len(shas)
                shas.append((v.adapter, v.adapter_sha256))
        if len(shas) > 255 or len(verdicts) > 0xFFFF:
            raise ValueError(f"{len(shas)} adapters / {len(verdicts)} verdicts do not fit a request id")
        out = bytearray(_HEAD.pack(VERSION, issued, secrets.token_bytes(8), len(shas)))
        for name, sha in shas:
            raw = name.encode()
            if len(raw) > 255:
                raise ValueError(f"adapter name {name[:40]!r}... is longer than 255 bytes")
            out += bytes([len(raw)]) + raw + bytes.fromhex(sha)
        out += struct.pack(">H", len(verdicts))
        for v in verdicts:
            score = round(min(max(v.p_phishing, 0.0), 1.0) * _SCORE_MAX)
            score |= _PHISHING_BIT if v.predicted == "phishing" else 0
            out += _VERDICT.pack(v.index, slots[v.adapter], score)
        mac = self._mac(self.keys[0], bytes(out))
        return PREFIX + base64.urlsafe_b64encode(bytes(out) + mac).rstrip(b"=").decode()

    def open(self, request_id: str) -> SignedRequest:
        """The verdicts an id carries, once its MAC verifies under one of the keys."""
        if not request_id.startswith(PREFIX):
            raise RequestIdRejected(f"a request id starts with {PREFIX!r}")
        body = request_id[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise RequestIdRejected("not base64url") from None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(payload) < _HEAD.size or not any(
            hmac.compare_digest(mac, self._mac(k, payload)) for k in self.keys
        ):
            raise RequestIdRejected(
                "its signature does not verify (issued by a server with another feedback secret, or altered)"
            )
        return _decode(payload, mac)

    @staticmethod
    def _mac(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _decode(payload: bytes, mac: bytes) -> SignedRequest:
    """Parse a payload whose MAC verified (so a parse error means a format version we do not know)."""
    try:
        version, issued, _nonce, n_adapters = _HEAD.unpack_from(payload, 0)
        if version != VERSION:
            raise RequestIdRejected(
                f"request id format {version} is not supported (this server reads {VERSION})"
            )
        pos = _HEAD.size
        adapters: list[tuple[str, str]] = []
        for _ in range(n_adapters):
            n = payload[pos]
            name = payload[pos + 1 : pos + 1 + n].decode()
            sha = payload[pos + 1 + n : pos + 33 + n].hex()
            adapters.append((name, sha))
            pos += 33 + n
        (n_verdicts,) = struct.unpack_from(">H", payload, pos)
        pos += 2
        verdicts = []
        for _ in range(n_verdicts):
            index, slot, score = _VERDICT.unpack_from(payload, pos)
            pos += _VERDICT.size
            name, sha = adapters[slot]
            verdicts.append(
                SignedVerdict(
                    index,
                    name,
                    sha,
                    (score & _SCORE_MAX) / _SCORE_MAX,
                    "phishing" if score & _PHISHING_BIT else "legitimate",
                )
            )
    except (struct.error, IndexError, UnicodeDecodeError):
        raise RequestIdRejected("truncated request id payload") from None
    if pos != len(payload):
        raise RequestIdRejected("trailing bytes in the request id payload")
    return SignedRequest(issued, verdicts, mac)
