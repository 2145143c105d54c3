"""Run the server with uvicorn (one worker: one engine per process); used by ``phishlens serve``."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from typing import Any

from .settings import Settings, get_settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if settings.log_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def uvicorn_config(app: Any, settings: Settings, port: int | None = None, **overrides: Any) -> Any:
    """The one uvicorn configuration: `phishlens serve`, the tests and the benchmarks all serve through it,
    so they run what operators run (keep-alive, graceful shutdown)."""
    import uvicorn

    kw: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port if port is None else port,
        "workers": 1,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s),
        "timeout_keep_alive": int(math.ceil(settings.keep_alive_s)),
    }
    return uvicorn.Config(app, **(kw | overrides))


def serve(settings: Settings | None = None) -> None:
    """Start uvicorn in the foreground with the app built from `settings` (env when omitted)."""
    import uvicorn

    from .app import create_app

    settings = settings or get_settings()
    configure_logging(settings)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    app.state.request_exit = lambda: setattr(server, "should_exit", True)  # the engine watchdog's stop
    server.run()  # SIGTERM/SIGINT: stop accepting, drain in-flight requests (up to the grace), shut down
    if app.state.exit_code:
        sys.exit(app.state.exit_code)


if __name__ == "__main__":  # the vLLM engine spawns processes: keep the guard
    serve()
