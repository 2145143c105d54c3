"""Fixtures shared by the in-process API tests."""

from __future__ import annotations

import pytest

from tests.fakes import FakeBackend


@pytest.fixture(scope="module")
def backend(tokenizer, smollm2_base):
    """A deterministic fake engine per test module (its state: failures, gates, calls)."""
    return FakeBackend(tokenizer, smollm2_base.sha256)
