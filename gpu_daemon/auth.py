"""Request guards, as plain ASGI middleware so they act before any body is read.

- BearerAuth: every path but the liveness probe needs ``Authorization: Bearer <token>``,
  compared in constant time; anything else is 401.
- BodyLimit: a body larger than the limit is 413, whether announced by Content-Length or
  only discovered while it streams in (chunked uploads carry no length).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def token_matches(header: bytes | None, token: bytes) -> bool:
    """Whether an Authorization header carries the token (constant time in the token)."""
    if not header:
        return False
    scheme, _, value = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), token)


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        # None only with --insecure-no-token.
        self.token = token.encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.token is not None
            and scope["path"] not in PUBLIC_PATHS
            and not token_matches(_header(scope, b"authorization"), self.token)
        ):
            await _answer(send, 401, "missing or wrong bearer token (STORYBOARD_DAEMON_TOKEN)",
                          [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: int | str) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes " \
               "(daemon.max_body_bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _answer(send, 400, "invalid Content-Length header", [])
                return
            if size > self.max_bytes:
                await _answer(send, 413, self._too_large(size), [(b"connection", b"close")])
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised into the body reader: FastAPI passes HTTPException through as is.
                    raise HTTPException(413, self._too_large(f"more than {self.max_bytes}"))
            return message

        await self.app(scope, counted, send)
