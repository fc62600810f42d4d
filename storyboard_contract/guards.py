"""Request guards, as plain ASGI middleware so they act before any body is read.

- BearerAuth: every path but the liveness probe needs ``Authorization: Bearer <token>``,
  compared in constant time; anything else is 401.
- BodyLimit: a body larger than the limit is 413, whether announced by Content-Length or
  only discovered while it streams in (chunked uploads carry no length).

The GPU daemon and `storyboard serve` both use them; each says which paths are guarded, which
setting holds the limit, and the key of its JSON error answers ("detail" or "error"); both
word an invalid body the same way (validation_message, unreadable_body).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException

from storyboard_contract import control_chars

if TYPE_CHECKING:
    from fastapi.exceptions import RequestValidationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz"})
# What FastAPI answers (400) for a body whose parsing raised anything but a JSON error.
BODY_UNREADABLE = "There was an error parsing the body"


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (`name` in lower case), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def json_answer(send: Send, status: int, detail: str,
                      headers: list[tuple[bytes, bytes]], key: str = "detail") -> None:
    """An answer of {key: detail} with its status, sent before the app sees the request."""
    body = json.dumps({key: detail}).encode()
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


def app_path(scope: Scope) -> str:
    """The request's path inside the app, without the root path a proxy mounts it under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _not_public(path: str) -> bool:
    return path not in PUBLIC_PATHS


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str | None, *,
                 guarded: Callable[[str], bool] = _not_public,
                 variable: str = "STORYBOARD_DAEMON_TOKEN", key: str = "detail") -> None:
        self.app = app
        # None only with --insecure-no-token (the daemon) or no token set (serve).
        self.token = token.encode() if token is not None else None
        self.guarded = guarded
        self.refusal = f"missing or wrong bearer token ({variable})"
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.token is not None
            and self.guarded(app_path(scope))
            and not token_matches(header(scope, b"authorization"), self.token)
        ):
            await json_answer(send, 401, self.refusal, [(b"www-authenticate", b"Bearer")],
                              self.key)
            return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, *, setting: str = "daemon.max_body_bytes",
                 key: str = "detail") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.setting = setting
        self.key = key

    def _too_large(self, size: int | str) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes " \
               f"({self.setting})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await json_answer(send, 400, "invalid Content-Length header", [], self.key)
                return
            if size > self.max_bytes:
                await json_answer(send, 413, self._too_large(size),
                                  [(b"connection", b"close")], self.key)
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


def validation_message(exc: RequestValidationError) -> str:
    """An invalid body as one line: `invalid request: title: Field required; ...`. A key
    of the body (a dict's, as `set` in a cast change) is the client's text: its control
    characters are written as escapes, so the line stays one line."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return control_chars.visible("invalid request: " + "; ".join(parts))


def unreadable_body(exc: HTTPException) -> str | None:
    """FastAPI's 400 for a body its JSON parser gave up on (nested too deeply) worded as
    every other body that is not JSON, for a 422; None for any other HTTPException."""
    if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
        return "invalid request: the body is not JSON this server reads (nested too deeply?)"
    return None
