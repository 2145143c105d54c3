"""Request body cap as pure ASGI middleware: 413 before the app reads an oversized body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from .errors import PayloadTooLarge, error_response


class BodyLimitMiddleware:
    """Refuse a declared Content-Length over the cap; count streamed bytes otherwise.

    The body (at most `max_bytes`) is buffered here and replayed to the app, so an over-long chunked
    body is answered with our 413 rather than surfacing as a parse error inside the route.

    Before answering 413 the rest of the body is read and dropped (at most `drain_bytes`, for at most
    `drain_s` seconds): a client that writes its whole body before reading (Python's urllib, most simple
    clients) otherwise meets a closed socket ("connection reset by peer") instead of the 413. Requests
    sent with `Expect: 100-continue` are answered at once: such clients have not sent the body.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        max_bytes: int,
        drain_bytes: int = 64 * 1024 * 1024,
        drain_s: float = 10.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes
        self.drain_s = drain_s

    def _too_large(self) -> JSONResponse:
        # the connection closes after a 413 whose body was not fully read; say so
        return error_response(
            PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes"), headers={"Connection": "close"}
        )

    async def _drain(self, receive: Callable[..., Any], seen: int) -> None:
        """Read and drop the rest of the body, bounded in bytes and time (memory stays flat)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_s
        while seen <= self.drain_bytes:
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                return
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            expects = headers.get(b"expect", b"").lower() == b"100-continue"
            if declared.isdigit() and int(declared) <= self.drain_bytes and not expects:
                await self._drain(receive, 0)
            await self._too_large()(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, total)
                await self._too_large()(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class JsonBodyMiddleware:
    """Treat POST bodies sent without a JSON content type as JSON.

    Every POST route takes JSON only, and `curl -d '{...}'` (the README's example, and what operators
    type) sends `application/x-www-form-urlencoded`; FastAPI would then refuse the body with a 422.
    Rewriting the header is safe: a body that is not JSON still gets our 400 "malformed JSON".
    """

    _FORMISH = (b"", b"application/x-www-form-urlencoded", b"text/plain")

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = list(scope.get("headers") or [])
            ctype = next((v for k, v in headers if k == b"content-type"), b"")
            if ctype.split(b";")[0].strip().lower() in self._FORMISH:
                headers = [(k, v) for k, v in headers if k != b"content-type"] + [
                    (b"content-type", b"application/json")
                ]
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
