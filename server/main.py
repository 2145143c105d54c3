"""Run the server with uvicorn (one worker: one engine per process); used by ``phishlens serve``."""

from __future__ import annotations

import json
import logging
import sys
import time

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


def serve(settings: Settings | None = None) -> None:
    """Start uvicorn in the foreground with the app built from `settings` (env when omitted)."""
    import uvicorn

    from .app import create_app

    settings = settings or get_settings()
    configure_logging(settings)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            workers=1,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
    )
    app.state.request_exit = lambda: setattr(server, "should_exit", True)  # the engine watchdog's stop
    server.run()  # SIGTERM/SIGINT: stop accepting, drain in-flight requests (up to the grace), shut down
    if app.state.exit_code:
        sys.exit(app.state.exit_code)


if __name__ == "__main__":  # the vLLM engine spawns processes: keep the guard
    serve()
