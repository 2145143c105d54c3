"""Request body cap as pure ASGI middleware: 413 before the app reads an oversized body."""

from __future__ import annotations

from typing import Any, Callable

from fastapi.responses import JSONResponse

from .errors import PayloadTooLarge, error_response


class BodyLimitMiddleware:
    """Refuse a declared Content-Length over the cap at once; count streamed bytes otherwise.

    The body (at most `max_bytes`) is buffered here and replayed to the app, so an over-long chunked
    body is answered with our 413 rather than surfacing as a parse error inside the route.
    """

    def __init__(self, app: Callable[..., Any], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return error_response(PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes"))

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
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
