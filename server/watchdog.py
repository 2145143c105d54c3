"""Engine watchdog: a dead inference engine ends the process with a distinct status, so the supervisor
(systemd, Kubernetes, docker restart policies) replaces it instead of routing traffic to a zombie.

While the engine is unhealthy requests already get 424 (a failed call) or 503 (`/ready`, so the load
balancer drains this replica); when that lasts `engine_dead_after_s`, the watchdog logs a critical line
and asks the server to stop. `phishlens serve` then exits with `ENGINE_DEAD_EXIT` after the graceful
shutdown (in-flight requests finish or fail with their own errors).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .backends.base import Backend

logger = logging.getLogger(__name__)
ENGINE_DEAD_EXIT = 3


async def watch_engine(
    engine: Backend, every_s: float, dead_after_s: float, on_dead: Callable[[], None]
) -> None:
    """Poll `engine.healthy()` every `every_s`; call `on_dead` once it has failed for `dead_after_s`."""
    bad_since: float | None = None
    while True:
        await asyncio.sleep(every_s)
        try:
            ok = await engine.healthy()
        except Exception:  # noqa: BLE001 - a health check that raises is a failed health check
            ok = False
        now = time.monotonic()
        if ok:
            if bad_since is not None:
                logger.warning("inference engine healthy again after %.1fs", now - bad_since)
            bad_since = None
            continue
        if bad_since is None:
            bad_since = now
            logger.error("inference engine unhealthy; /ready answers 503")
        if now - bad_since >= dead_after_s:
            logger.critical(
                "inference engine unhealthy for %.0fs: stopping; the process exits with status %d "
                "so its supervisor restarts it",
                now - bad_since,
                ENGINE_DEAD_EXIT,
            )
            on_dead()
            return
