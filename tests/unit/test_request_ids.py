"""Signed request ids (server/services/request_ids.py): round trip, forgery, rotation, size."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from phishlens.clients.protocol import FeedbackRequest
from phishlens.clients.protocol.feedback import MAX_REQUEST_ID_CHARS, REQUEST_ID_PATTERN
from phishlens.server.services.request_ids import (
    PREFIX,
    RequestIdCodec,
    RequestIdRejected,
    SignedVerdict,
    _process_key,
)

SHA_A, SHA_B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()


def verdicts(n_texts: int = 3) -> list[SignedVerdict]:
    out = []
    for i in range(n_texts):
        out.append(
            SignedVerdict(
                i, "specialist-sms", SHA_A, i / (n_texts + 1), "phishing" if i % 2 else "legitimate"
            )
        )
        out.append(SignedVerdict(i, "generalist", SHA_B, 0.5, "phishing"))  # on the threshold: label kept
    return out


def test_round_trip_carries_every_verdict():
    codec = RequestIdCodec([b"k1"])
    vs = verdicts()
    rid = codec.issue(vs, issued=1_764_400_000)
    got = codec.open(rid)
    assert got.issued == 1_764_400_000 and len(got.mac) == 16
    assert [(v.index, v.adapter, v.adapter_sha256, v.predicted) for v in got.verdicts] == [
        (v.index, v.adapter, v.adapter_sha256, v.predicted) for v in vs
    ]
    assert all(abs(a.p_phishing - b.p_phishing) <= 1 / 32767 for a, b in zip(got.verdicts, vs))
    FeedbackRequest(request_id=rid, labels=[{"index": 0, "label": "phishing"}])  # the wire schema accepts it


def test_two_identical_answers_get_distinct_ids():
    codec = RequestIdCodec([b"k1"])
    a, b = codec.issue(verdicts(), 5), codec.issue(verdicts(), 5)
    assert a != b and codec.open(a).mac != codec.open(b).mac


def test_another_secret_or_an_altered_id_is_rejected():
    rid = RequestIdCodec([b"k1"]).issue(verdicts(), 5)
    with pytest.raises(RequestIdRejected, match="signature"):
        RequestIdCodec([b"k2"]).open(rid)
    body = bytearray(rid[len(PREFIX) :].encode())
    body[20] = ord("A") if body[20] != ord("A") else ord("B")  # flip one payload character
    with pytest.raises(RequestIdRejected, match="signature"):
        RequestIdCodec([b"k1"]).open(PREFIX + body.decode())
    for bad in ("clf-" + "0" * 32, "clf-", "clf-@@@", "nope"):
        with pytest.raises(RequestIdRejected):
            RequestIdCodec([b"k1"]).open(bad)


def test_rotation_first_key_signs_all_verify():
    old = RequestIdCodec([b"old"]).issue(verdicts(), 5)
    rotated = RequestIdCodec([b"new", b"old"])
    assert rotated.open(old).verdicts  # issued before the rotation: still accepted
    assert RequestIdCodec([b"new"]).open(rotated.issue(verdicts(), 5)).verdicts


def test_without_secret_ids_are_per_process():
    codec = RequestIdCodec.from_secrets([])
    assert not codec.shared and codec.keys == [_process_key()]
    assert RequestIdCodec.from_secrets([SecretStr("s")]).shared


def test_worst_case_request_fits_the_wire_limit():
    """64 texts x 8 adapters with 255-byte names (the default caps) fits MAX_REQUEST_ID_CHARS."""
    vs = [
        SignedVerdict(i, f"{j:03d}" + "x" * 252, SHA_A, 0.3, "legitimate")
        for i in range(64)
        for j in range(8)
    ]
    rid = RequestIdCodec([b"k"]).issue(vs, 5)
    assert len(rid) < MAX_REQUEST_ID_CHARS
    import re

    assert re.match(REQUEST_ID_PATTERN, rid)
    assert len(RequestIdCodec([b"k"]).issue(verdicts(1)[:1], 5)) < 120  # one text, one adapter: short
