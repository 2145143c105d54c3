"""Give the heap's free pages back to the OS: glibc `malloc_trim(0)`, every `malloc_trim_interval_s`.

Why (docs/reliability.md, RSS soak): batches of varying token counts make the engine's tensors and oneDNN
kernels churn through glibc's malloc arenas; an arena only shrinks from its top, so freed chunks below a
live one stay resident. In the soak that "free but resident" memory grew 15-20 MB/min with nothing live
behind it, and one `malloc_trim(0)` handed back 50-160 MB each time. The call walks the arenas under
their locks (milliseconds), so it runs in a worker thread. Without glibc (musl, or tcmalloc/jemalloc
preloaded, which manage their own pages) there is nothing to trim and the loop does not start. tcmalloc is
the preferred allocator (the image and `make serve` preload it; the RSS then levels off after warm-up, which
trimming under glibc does not achieve); this is the fallback where it is absent.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def glibc_malloc_trim() -> Callable[[], None] | None:
    """`malloc_trim(0)` when glibc's malloc serves this process, else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
        libc.gnu_get_libc_version  # noqa: B018 - glibc, not another libc with a malloc_trim of its own
        used = ctypes.CDLL(None).malloc  # the malloc this process resolves (a preloaded one comes first)
    except (OSError, AttributeError):
        return None
    if ctypes.cast(used, ctypes.c_void_p).value != ctypes.cast(libc.malloc, ctypes.c_void_p).value:
        return None  # tcmalloc/jemalloc serve malloc: glibc's arenas are not in use
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


def trim_once(trim: Callable[[], None]) -> int:
    """Run one trim; the RSS it released, in bytes (0 when none)."""
    before = rss_bytes()
    trim()
    return max(0, before - rss_bytes())


async def trim_periodically(every_s: float, on_released: Callable[[int], None]) -> None:
    """Trim every `every_s` seconds until cancelled (returns at once without glibc)."""
    trim = glibc_malloc_trim()
    if trim is None:
        logger.info("malloc_trim not available (not glibc malloc): heap trimming off")
        return
    while True:
        await asyncio.sleep(every_s)
        on_released(await asyncio.to_thread(trim_once, trim))
