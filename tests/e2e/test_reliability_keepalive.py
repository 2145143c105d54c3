"""Keep-alive on a real uvicorn server (HF backend, tiny Llama): the server keeps an idle connection open
for `keep_alive_s` and closes it after. A server that closes sooner than the client pool in front of it
races the client's next request on that connection, which then fails unanswered (CI saw 2 of 4,265
requests lost that way under uvicorn's 5 s default); the default is 75 s, above common 60 s pools."""

from __future__ import annotations

import socket
import time

from tests.e2e.servers import serve
from tests.e2e.test_reliability_faults import settings_for


def _get_health(sock: socket.socket) -> bytes:
    """One keep-alive GET /health on `sock`; the whole response, or b"" if the server had closed it."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_idle_connection_is_kept_for_keep_alive_s_then_closed(tiny_llama, tiny_bundles, tmp_path):
    root, _, _ = tiny_bundles
    settings = settings_for(tiny_llama, root, tmp_path / "state", keep_alive_s=2)
    with serve(settings) as live:
        host, port = live.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _get_health(sock).startswith(b"HTTP/1.1 200")
            time.sleep(1)  # idle, under keep_alive_s: the same connection answers
            assert _get_health(sock).startswith(b"HTTP/1.1 200")
            time.sleep(3.5)  # past keep_alive_s (and under uvicorn's own 5 s): the server closed it
            try:
                answer = _get_health(sock)
            except ConnectionResetError:
                answer = b""
            assert answer == b""
