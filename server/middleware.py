"""Pure ASGI middleware that guards the whole app: one 500 path, and text that is not Unicode.

`CatchAllMiddleware` answers anything no handler mapped with the one error body and logs it ONCE
(Starlette's own 500 path logs through our handler and then re-raises to uvicorn, which logged every
traceback a second time). `TextGuardMiddleware` refuses JSON strings holding lone UTF-16 surrogates
(`"\\ud800"`: valid JSON, not valid Unicode, sent by any JavaScript client that cuts a string inside a
pair) with a 422 naming where, before they reach a tokenizer that raises TypeError on them.
Policy: refuse, never repair; a silently rewritten text would be scored as something the caller did
not send.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from .errors import ValidationFailed, error_body, error_response

logger = logging.getLogger(__name__)

# a JSON escape of a surrogate (\uD800-\uDFFF) or one encoded as UTF-8 bytes (json.loads decodes bodies
# with "surrogatepass"); only bodies holding one, or in another encoding (UTF-16/32), are parsed here
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class CatchAllMiddleware:
    """Unhandled exception → 500 `internal_error` (no detail, no request text), one log line with the trace."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            logger.error("unhandled %s on %s %s", type(exc).__name__, scope.get("method"), scope.get("path"),
                         exc_info=exc)
            if not started:  # else the response is half sent: the server closes the connection
                response = JSONResponse(error_body("internal_error", "internal server error"), status_code=500)
                await response(scope, receive, send)


def lone_surrogate(value: Any) -> tuple[str, int, int] | None:
    """(location, character index, code point) of the first lone surrogate in a decoded JSON value."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # iterative: a deeply nested body must not exhaust the recursion limit here
        loc, v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")  # C speed; only surrogates fail to encode
            except UnicodeEncodeError as e:
                return loc or "body", e.start, ord(v[e.start])
        elif isinstance(v, dict):
            for k, item in reversed(list(v.items())):
                stack.append((f"{loc}.{k}" if loc else str(k), k))  # keys too
                stack.append((f"{loc}.{k}" if loc else str(k), item))
        elif isinstance(v, list):
            stack.extend((f"{loc}[{i}]", item) for i, item in reversed(list(enumerate(v))))
    return None


class TextGuardMiddleware:
    """422 for a JSON body whose strings hold lone surrogates; every other body passes untouched."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # BodyLimitMiddleware (outside) already capped and buffered the body
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        suspect = _SURROGATE.search(body) is not None or json.detect_encoding(body) != "utf-8"
        found = _find(body) if suspect else None
        if found is not None:
            loc, index, code = found
            loc = loc.encode("utf-8", "backslashreplace").decode("utf-8")  # a key may hold the surrogate
            exc = ValidationFailed(f"{loc}: character {index} is a lone UTF-16 surrogate (U+{code:04X}), "
                                   "which is not valid Unicode text; send the full surrogate pair or UTF-8")
            await error_response(exc)(scope, receive, send)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _find(body: bytes) -> tuple[str, int, int] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or absurdly nested): the app answers 400
        return None
    return lone_surrogate(value)
