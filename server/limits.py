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


class JsonBodyMiddleware:
    """Treat POST bodies sent without a JSON content type as JSON.

    Every POST route takes JSON only, and `curl -d '{...}'` (the README's example, and what operators
    type) sends `application/x-www-form-urlencoded`; FastAPI would then refuse the body with a 422.
    Rewriting the header is safe: a body that is not JSON still gets our 400 "malformed JSON".
    """

    _FORMISH = (b"", b"application/x-www-form-urlencoded", b"text/plain")

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = list(scope.get("headers") or [])
            ctype = next((v for k, v in headers if k == b"content-type"), b"")
            if ctype.split(b";")[0].strip().lower() in self._FORMISH:
                headers = [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-type", b"application/json")]
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
