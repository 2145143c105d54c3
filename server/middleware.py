"""Pure ASGI middleware that guards the whole app: one 500 path, and text that is not Unicode.

`CatchAllMiddleware` answers anything no handler mapped with the one error body and logs it ONCE
(Starlette's own 500 path logs through our handler and then re-raises to uvicorn, which logged every
traceback a second time), as the stack frames without the exception messages, which may quote the
text. `TextGuardMiddleware` refuses JSON strings holding lone UTF-16 surrogates
(`"\\ud800"`: valid JSON, not valid Unicode, sent by any JavaScript client that cuts a string inside a
pair) with a 422 naming where, before they reach a tokenizer that raises TypeError on them.
Policy: refuse, never repair; a silently rewritten text would be scored as something the caller did
not send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from .errors import ValidationFailed, error_body, error_response

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("phishlens.audit")
_AUDIT_BODY_BYTES = 4096  # a load request is a path and a name; never keep more

# a JSON escape of a surrogate (\uD800-\uDFFF) or one encoded as UTF-8 bytes (json.loads decodes bodies
# with "surrogatepass"); only bodies holding one, or in another encoding (UTF-16/32), are parsed here
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class ResponseStatus:
    """An ASGI `send` that remembers the status of the response it passes on (None until the response
    starts): the one status capture the catch-all, audit and metrics middleware share."""

    def __init__(self, send: Callable[..., Any]) -> None:
        self.send = send
        self.status: int | None = None

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        await self.send(message)


class CatchAllMiddleware:
    """Unhandled exception → 500 `internal_error` (no detail, no request text), one log line with the
    trace."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = ResponseStatus(send)
        try:
            await self.app(scope, receive, sent)
        except Exception as exc:  # noqa: BLE001 - last line of defence: answered and logged here
            logger.error(
                "unhandled %s on %s %s (message withheld: it may quote request text)\n%s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                _frames(exc),
            )
            if sent.status is None:  # else the response is half sent: the server closes the connection
                response = JSONResponse(
                    error_body("internal_error", "internal server error"), status_code=500
                )
                await response(scope, receive, send)


def _frames(exc: BaseException) -> str:
    """The traceback's frames (file, line, function, source line) without any exception message."""
    out = []
    for e in _chain(exc):
        out.append(f"{type(e).__module__}.{type(e).__qualname__}")
        out += [
            f'  File "{f.filename}", line {f.lineno}, in {f.name}: {f.line}'
            for f in traceback.extract_tb(e.__traceback__)
        ]
    return "\n".join(out)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen and len(seen) < 5:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen[::-1]


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

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
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
            exc = ValidationFailed(
                f"{loc}: character {index} is a lone UTF-16 surrogate (U+{code:04X}), "
                "which is not valid Unicode text; send the full surrogate pair or UTF-8"
            )
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


class AuditMiddleware:
    """One JSON line per admin request (granted or refused) to the `phishlens.audit` logger and, when
    configured, appended to `audit_log`: time, method, route path, status, key fingerprint, client address
    and, for a load, the adapter `name`, the `bundle` path and `replace`. `deps.require_admin` marks the
    request; others are not recorded."""

    def __init__(self, app: Callable[..., Any], audit_log: Path | None = None) -> None:
        self.app = app
        self.audit_log = audit_log

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared by the copies inner middleware make of `scope`
        head = bytearray()

        async def receive_wrapper() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request" and len(head) < _AUDIT_BODY_BYTES:
                head.extend(message.get("body", b"")[: _AUDIT_BODY_BYTES - len(head)])
            return message

        sent = ResponseStatus(send)
        try:
            await self.app(scope, receive_wrapper, sent)
        finally:
            key = scope["state"].get("audit")
            if key is not None:  # no response started: the app raised, CatchAll (outside) answers 500
                await self._record(scope, sent.status or 500, key, bytes(head))

    async def _record(self, scope: dict[str, Any], status: int, key: str, body: bytes) -> None:
        record: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "outcome": "granted" if status < 400 else "refused",
            "key": key,
            "client": (scope.get("client") or ["-"])[0],
        }
        try:
            sent = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            sent = {}
        if isinstance(sent, dict):  # what was loaded: identifiers only, cut short
            if "name" in sent:
                record["name"] = str(sent["name"])[:200]
            if "path" in sent:  # the bundle's path; `path` stays the route's
                record["bundle"] = str(sent["path"])[:200]
            if sent.get("replace") is True:
                record["replace"] = True
        line = json.dumps(record, ensure_ascii=True)
        audit_logger.info(line)
        if self.audit_log is not None:
            try:
                await asyncio.to_thread(_append, self.audit_log, line)
            except OSError as e:  # a full disk must not fail the admin request; the logger has the line
                logger.error("audit log %s not written: %s", self.audit_log, e.strerror or type(e).__name__)


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
