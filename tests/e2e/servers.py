"""A real uvicorn server on a loopback port for the reliability tests, on the HF backend (tiny Llama).

The shared vLLM `live_server` (conftest) is the production engine; the reliability tests that need
their own settings (API keys with scopes, small caps, an audit log, a private state dir) or thousands
of requests start this one instead: same app factory, same uvicorn, a real transformers model, ms per
request. Logging goes through the root logger as under `phishlens serve` (uvicorn `log_config=None`),
so a test can read every line the server wrote.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LogLines(logging.Handler):
    """Every formatted record (message + traceback) the process logs while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Server:
    url: str
    app: Any
    settings: Any
    logs: LogLines
    uvicorn: Any = field(repr=False, default=None)
    thread: threading.Thread | None = field(repr=False, default=None)

    def http(self, **kw: Any) -> httpx.Client:
        kw.setdefault("timeout", 120.0)
        return httpx.Client(base_url=self.url, **kw)


@contextlib.contextmanager
def serve(
    settings: Any, backend: Any = None, startup_timeout_s: float = 300.0, ready: bool = True
) -> Iterator[Server]:
    """Run `create_app(settings, backend)` under uvicorn in a thread until the block exits; wait for /ready
    (or only /health when `ready` is false)."""
    import uvicorn

    from phishlens.server.app import create_app
    from phishlens.server.main import uvicorn_config

    logs = LogLines()
    root = logging.getLogger()
    root.addHandler(logs)
    level = root.level
    root.setLevel(logging.INFO)
    app = create_app(settings, backend=backend)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, settings, port=port, host="127.0.0.1"))
    app.state.request_exit = lambda: setattr(server, "should_exit", True)  # as `phishlens serve` does
    thread = threading.Thread(target=server.run, name="phishlens-reliability-uvicorn", daemon=True)
    thread.start()
    live = Server(f"http://127.0.0.1:{port}", app, settings, logs, server)
    try:
        deadline = time.monotonic() + startup_timeout_s
        with live.http(timeout=30.0) as c:
            while True:
                if not thread.is_alive():
                    raise RuntimeError("the server exited during start-up:\n" + logs.text()[-4000:])
                try:
                    if c.get("/ready" if ready else "/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready:\n" + logs.text()[-4000:])
                time.sleep(0.3)
        live.thread = thread
        yield live
    finally:
        server.should_exit = True
        thread.join(120)
        root.removeHandler(logs)
        root.setLevel(level)
