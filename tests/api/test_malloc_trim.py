"""The server hands freed heap pages back to the OS (server/memory.py, docs/reliability.md RSS soak).

Real glibc: 200 MB in 64 KB blocks (below malloc's mmap threshold, so they come from an arena), all freed
but the last, which pins the arena's top: the pages stay resident until `malloc_trim` returns them.
"""

from __future__ import annotations

import ctypes
import time

import pytest
from fastapi.testclient import TestClient

from phishlens.server.app import create_app
from phishlens.server.memory import glibc_malloc_trim, rss_bytes, trim_once
from phishlens.server.settings import Settings
from tests.fakes import FakeBackend

MB = 1 << 20
pytestmark = pytest.mark.skipif(glibc_malloc_trim() is None, reason="needs glibc malloc")


def fragment(mb: int = 200) -> int:
    """Leave `mb` MB free but resident inside malloc's arena; returns the one live block (free it).

    The arena is trimmed first: in a long test process it already holds free pages from earlier tests,
    which the new blocks would reuse without raising RSS (the full suite failed on that)."""
    trim_once(glibc_malloc_trim())
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 << 10) for _ in range(mb * 16)]
    for b in blocks:
        libc.memset(b, 1, 64 << 10)
    for b in blocks[:-1]:
        libc.free(b)
    return blocks[-1]


def release(block: int) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free(block)


def test_trim_once_returns_free_arena_pages():
    trim_once(glibc_malloc_trim())
    before = rss_bytes()
    last = fragment()
    try:
        assert rss_bytes() - before > 150 * MB  # freed, still resident
        assert trim_once(glibc_malloc_trim()) > 150 * MB
        assert rss_bytes() - before < 50 * MB
    finally:
        release(last)


@pytest.mark.parametrize("interval_s", [0.2, 0.0])
def test_the_server_trims_every_interval(adapter_root, tokenizer, smollm2_base, interval_s):
    settings = Settings(adapter_roots=[adapter_root], adapters=["default"], malloc_trim_interval_s=interval_s)
    with TestClient(create_app(settings, backend=FakeBackend(tokenizer, smollm2_base.sha256))) as c:
        counter = c.app.state.metrics.malloc_trim_released
        last = fragment()
        peak, released_before = rss_bytes(), counter._value.get()
        try:
            deadline = time.monotonic() + (3 if interval_s else 1.5)
            while time.monotonic() < deadline and (
                peak - rss_bytes() < 150 * MB or counter._value.get() - released_before < 150 * MB
            ):
                time.sleep(0.1)
            dropped, released = peak - rss_bytes(), counter._value.get() - released_before
        finally:
            release(last)
    if interval_s:
        assert dropped > 150 * MB and released > 150 * MB, (dropped / MB, released / MB)
    else:  # 0 = off: what the server did before, the freed pages stay resident
        assert dropped < 50 * MB and released == 0, (dropped / MB, released / MB)


def test_ld_preload_in_the_environment_alone_keeps_trimming(monkeypatch):
    """vLLM's CPU platform writes LD_PRELOAD (libgomp) into os.environ for its child processes; this
    process's malloc is still glibc's (the first soak with the trimmer logged "not available")."""
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/libgomp.so.1")
    assert glibc_malloc_trim() is not None
