"""Who may use the API of `storyboard serve`: a client sending the API token as a bearer
header (the remote CLI, scripts), or a browser logged in to the web board (login.py) with a
session cookie.

A session is a random id in an HttpOnly cookie (scripts cannot read it), SameSite=Strict
(another site's pages never make the browser send it) and Secure under https. The store keeps
only a digest of the id, keyed by the API token (store/sessions.py): a copy of the store
opens no session, and a new token ends every session made under the old one. A session ends
at its expiry ([server] session_expiry) or at logout.

Cross-site request forgery: a cookie is sent by the browser whoever's page asks, so a request
that carries only a session must also show it comes from the board itself. SameSite keeps
other sites out, but not another port of the same host (a site is a host, whatever its port):
so a state-changing request (anything but GET and HEAD) must carry an Origin (or Referer) of
this very server, and any request whose Sec-Fetch-Site says another origin made it is refused.
The bearer header needs none of this: a browser never adds it by itself.

The token and the session id are never in a URL (the login form posts the token in its body),
so neither reaches the access log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from anyio import to_thread

from storyboard_contract.guards import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    app_path,
    header,
    json_answer,
    token_matches,
)

if TYPE_CHECKING:
    from storyboard_cli.store import Store

COOKIE = "storyboard_session"
# What the gate found out, for the routes (request.scope[AUTH]): "bearer", "session", or
# "open" (the server has no token); absent when the request proved nothing.
AUTH = "storyboard.auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests the board itself makes, or the user typing a URL.
OWN_FETCHES = frozenset({b"same-origin", b"none"})


class SessionKeeper:
    """Starts, checks and ends the web board's sessions, in the store (blocking: call it from
    a worker thread). `store` gives the calling thread's store."""

    def __init__(self, token: str, expiry_s: int, store: Callable[[], Store]) -> None:
        self.key = token.encode()
        self.expiry_s = expiry_s
        self.store = store

    def digest(self, session_id: str) -> str:
        return hmac.new(self.key, session_id.encode(), hashlib.sha256).hexdigest()

    def start(self) -> str:
        """A new session; its id, for the cookie."""
        session_id = secrets.token_urlsafe(32)
        until = datetime.now(timezone.utc) + timedelta(seconds=self.expiry_s)
        self.store().add_session(self.digest(session_id),
                                 until.isoformat(timespec="milliseconds"))
        return session_id

    def live(self, session_id: str) -> bool:
        return self.store().session_live(self.digest(session_id))

    def end(self, session_id: str) -> None:
        self.store().remove_session(self.digest(session_id))


def session_id(scope: Scope) -> str | None:
    """The session id the request's cookie carries, if any."""
    raw = header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel and morsel.value else None


def cookie_header(scope: Scope, value: str, max_age: int) -> str:
    """The Set-Cookie value for a session id (max_age 0 with an empty value: forget it). The
    path is the board's root, so two boards under one host keep their own sessions."""
    path = scope.get("root_path", "").rstrip("/") + "/"
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return (f"{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; "
            f"SameSite=Strict{secure}")


def foreign_origin(scope: Scope) -> str | None:
    """Why a request must not act on a session (it comes from another origin's page), or None.
    Its own origin is the Host it was sent to, as the browser wrote it (a forwarded port or a
    proxy in front change nothing: the browser's Origin names the same host and port)."""
    fetch_site = header(scope, b"sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in OWN_FETCHES:
        return f"a request made by another site's page ({fetch_site.decode('latin-1')})"
    if scope.get("method", "GET") in SAFE_METHODS:
        return None
    host = (header(scope, b"host") or b"").decode("latin-1").lower()
    origin = header(scope, b"origin") or header(scope, b"referer")
    if origin is None:
        return "a change without an Origin header"
    if not host or urlsplit(origin.decode("latin-1")).netloc.lower() != host:
        return "a change from another origin"
    return None


class SessionGate:
    """ASGI middleware: records in scope[AUTH] what the request proves (the bearer token, a
    live session, or nothing) and answers the guarded paths (the API) 401 when it proves
    nothing, 403 when it rides a session from another origin. Without a token everything is
    open (serve then listens on loopback only)."""

    def __init__(self, app: ASGIApp, token: str | None, keeper: SessionKeeper | None,
                 guarded: Callable[[str], bool], variable: str, key: str = "error") -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.keeper = keeper
        self.guarded = guarded
        self.refusal = (f"missing or wrong bearer token ({variable}), and no live web board "
                        "session (log in again)")
        self.key = key

    async def who(self, scope: Scope) -> str | None:
        if self.token is None:
            return "open"
        if token_matches(header(scope, b"authorization"), self.token):
            return "bearer"
        sid = session_id(scope)
        if sid and self.keeper and await to_thread.run_sync(self.keeper.live, sid):
            return "session"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        who = await self.who(scope)
        if who is not None:
            scope[AUTH] = who
        if self.guarded(app_path(scope)):
            if who is None:
                await json_answer(send, 401, self.refusal, [(b"www-authenticate", b"Bearer")],
                              self.key)
                return
            why = foreign_origin(scope) if who == "session" else None
            if why:
                await json_answer(send, 403, f"refused {why}: use the board's own page", [],
                              self.key)
                return
        await self.app(scope, receive, send)
