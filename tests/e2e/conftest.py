"""End-to-end fixtures: ONE real uvicorn server on the real vLLM engine (tiny Llama + two trained bundles).

The engine costs ~20-40 s to start on a CPU, so the server is session-scoped and shared by every e2e
test (the parity tests reuse its engine too). It runs in a background thread on a free loopback port
and is driven over real HTTP with `phishlens.clients.PhishlensClient`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_KEY = "admin-secret"
PHISH, LEGIT = "zebra-phish", "zebra-legit"
STARTUP_TIMEOUT_S = 600.0  # engine start + golden checks, on a loaded 2-core host


def require_vllm() -> None:
    """Skip the calling test (clear reason) when vLLM cannot be imported."""
    try:
        import vllm  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising at import
        pytest.skip(f"vLLM is not importable ({type(e).__name__}: {e}); the e2e tests drive the real engine")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    app: Any  # the FastAPI app; `app.state.runtime` holds the engine and registry while serving
    settings: Any
    root: Path  # the adapter root (the tiny bundles live here)
    bundles: dict[str, Any]  # name -> training.contract.bundle.Bundle

    def client(self, api_key: str | None = None, **kw: Any):
        from phishlens.clients import PhishlensClient

        kw.setdefault("timeout", 300.0)
        return PhishlensClient(self.url, api_key=api_key, **kw)

    def admin(self, **kw: Any):
        return self.client(ADMIN_KEY, **kw)


@pytest.fixture(scope="session")
def live_server(tiny_llama, tiny_bundles):
    """A real phishlens server (vLLM backend) serving `zebra-phish` (default) and `zebra-legit`."""
    require_vllm()
    import uvicorn

    from phishlens.server.app import create_app
    from phishlens.server.main import uvicorn_config
    from phishlens.server.settings import Settings

    root, phish, legit = tiny_bundles
    settings = Settings(
        backend="vllm",
        base_model=str(tiny_llama.path),
        adapter_roots=[root],
        adapters=[PHISH, LEGIT],
        default_adapter=PHISH,
        admin_keys=[ADMIN_KEY],
        max_model_len=512,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, settings, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="phishlens-e2e-uvicorn", daemon=True)
    thread.start()
    live = LiveServer(f"http://127.0.0.1:{port}", app, settings, root, {PHISH: phish, LEGIT: legit})
    try:
        _wait_up(live, thread)
        yield live
    finally:
        server.should_exit = True
        thread.join(120)


def _wait_up(live: LiveServer, thread: threading.Thread) -> None:
    """Poll /health (listening) then /ready (engine up, golden checks pass); fail fast if start-up died."""
    from phishlens.clients import ConnectionError as ClientConnectionError

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with live.client(timeout=30.0, max_retries=0) as c:
        while True:
            if not thread.is_alive():
                pytest.fail(
                    "the e2e server exited during start-up (see the log above for the lifespan error)"
                )
            try:
                if c.health().status == "ok":
                    break
            except ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the e2e server did not answer /health within {STARTUP_TIMEOUT_S:g}s")
            time.sleep(0.5)
        c.wait_ready(timeout=max(1.0, deadline - time.monotonic()))


# ---- server processes (the real `phishlens.server.main`, as an operator starts it) ----------------------
REPO = Path(__file__).resolve().parents[2]


def spawn_smollm2(tmp: Path, **settings: str) -> tuple[subprocess.Popen, str, Path]:
    """Start a vLLM SmolLM2 server process on a free port, configured by ``settings`` only (the caller's
    PHISHLENS_* environment is dropped, the data root kept; drift and the explain warm-up off unless
    ``settings`` turn them on); returns (process, URL, log file) without waiting for it."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PHISHLENS_") or k == "PHISHLENS_DATA_ROOT"
    }
    env.update(
        PHISHLENS_PORT=str(port),
        PHISHLENS_BACKEND="vllm",
        PHISHLENS_BASE_MODEL="smollm2",
        PHISHLENS_DEFAULT_ADAPTER="default",
        PHISHLENS_DRIFT_ENABLED="false",
        PHISHLENS_EXPLAIN_WARMUP="false",
        PHISHLENS_DRIFT_STATE_DIR=str(tmp / "drift"),
    )
    env.update(settings)
    log = tmp / "server.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "phishlens.server.main"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}", log


@contextlib.contextmanager
def smollm2_server(tmp: Path, ready_timeout_s: float = 900.0, **settings: str) -> Iterator[str]:
    """`spawn_smollm2`, then yield its URL once /ready answers; stopped when the block exits."""
    proc, url, log = spawn_smollm2(tmp, **settings)
    try:
        _wait(lambda: _ok(f"{url}/ready"), ready_timeout_s, proc, log, "the phishlens server")
        yield url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(cond: Callable[[], bool], timeout: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"{what} exited during start-up (rc={proc.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready within {timeout:g}s:\n{_tail(log)}")
        time.sleep(0.5)


def _tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""
