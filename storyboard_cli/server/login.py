"""Logging in to the web board: `GET /login` is a form asking for the API token once (what
`storyboard token` prints), `POST /login` checks it and starts a session (sessions.py), and
`POST /logout` ends it. The board's pages send a browser without a session here first.

The token travels only in the form's body, never in a URL. It is compared in constant time,
and an address that gave a wrong token MAX_FAILURES times in WINDOW_S seconds waits out the
rest of the window (429), so a weak token cannot be guessed at speed. Behind one forwarded
port (ssh -L) or a proxy that does not pass X-Forwarded-For, every browser has the proxy's
address and they share the limit.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from html import escape
from urllib.parse import parse_qs, quote

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from storyboard_cli.server.sessions import (
    AUTH,
    SessionKeeper,
    cookie_header,
    foreign_origin,
    session_id,
)
from storyboard_cli.server.shell import document
from storyboard_contract.guards import app_path

LOGIN = "/login"
LOGOUT = "/logout"
MAX_FAILURES = 5
WINDOW_S = 60.0
# Addresses remembered at most; beyond, those whose failures are all older than the window go.
MAX_ADDRESSES = 10_000


class FailedLogins:
    """Wrong tokens per client address, over a sliding window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.by_address: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self.by_address.get(address, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def wait_s(self, address: str) -> float:
        """How long `address` must wait before it may try again (0: it may now)."""
        now = time.monotonic()
        times = self._recent(address, now)
        if not times:
            self.by_address.pop(address, None)
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return times[0] + self.window_s - now

    def failed(self, address: str) -> None:
        now = time.monotonic()
        times = self._recent(address, now)
        times.append(now)
        self.by_address[address] = times
        if len(self.by_address) > MAX_ADDRESSES:
            for gone in [a for a, t in self.by_address.items() if t[-1] <= now - self.window_s]:
                del self.by_address[gone]


def app_target(raw: str | None) -> str:
    """Where to go after logging in: a path inside the app (never another site, nor a
    scheme-relative //host), else the projects page."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return "/"
    return raw


def to_app_path(request: Request, path: str) -> str:
    """`path` inside the app as the browser reaches it (under the proxy's root path): a
    redirect names no host, so it works through any forwarded port or proxy."""
    return request.scope.get("root_path", "").rstrip("/") + path


def login_redirect(request: Request) -> RedirectResponse:
    """To the login form, coming back to this page afterwards."""
    here = app_target(app_path(request.scope))
    return RedirectResponse(to_app_path(request, f"{LOGIN}?next={quote(here, safe='/')}"),
                            status_code=303)


def login_page(request: Request, target: str, problem: str = "") -> str:
    alert = f'<p class="error" role="alert">{escape(problem)}</p>' if problem else ""
    return document(request, "Log in · storyboard", (
        '<main class="wrap login">\n<h1>Log in</h1>\n'
        '<p>This board needs its API token once; the browser then stays logged in '
        "until you log out. Run <code>storyboard token</code> on the host to see it.</p>\n"
        f"{alert}"
        f'<form method="post" action="{LOGIN.lstrip("/")}" class="stack">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<label for="token">API token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        'required autofocus>'
        '<button type="submit">Log in</button></form>\n</main>\n'))


def add_routes(app: FastAPI, token: str | None, keeper: SessionKeeper | None) -> None:
    """The login form and logout, when the server has a token (without one there is nothing
    to log in to: /login goes to the projects)."""
    failures = FailedLogins()

    @app.get(LOGIN, response_class=HTMLResponse, include_in_schema=False)
    async def login_form(request: Request, next: str = "/") -> Response:
        if token is None or request.scope.get(AUTH):
            return RedirectResponse(to_app_path(request, app_target(next)), status_code=303)
        return HTMLResponse(login_page(request, app_target(next)))

    @app.post(LOGIN, response_class=HTMLResponse, include_in_schema=False)
    async def log_in(request: Request) -> Response:
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        target = app_target(fields.get("next", ["/"])[0])
        if token is None or keeper is None:
            return RedirectResponse(to_app_path(request, target), status_code=303)
        why = foreign_origin(request.scope)
        if why:
            return HTMLResponse(login_page(request, target, f"Refused {why}."), 403)
        address = request.client.host if request.client else "?"
        wait = failures.wait_s(address)
        if wait > 0:
            return HTMLResponse(
                login_page(request, target, f"Too many wrong tokens: try again in "
                                            f"{int(wait) + 1} s."),
                429, headers={"Retry-After": str(int(wait) + 1)})
        given = fields.get("token", [""])[0].strip().encode()
        if not hmac.compare_digest(given, token.encode()):
            failures.failed(address)
            problem = "Wrong token: `storyboard token` on the host prints the right one."
            return HTMLResponse(login_page(request, target, problem), 401)
        new_id = await to_thread.run_sync(keeper.start)
        answer = RedirectResponse(to_app_path(request, target), status_code=303)
        answer.headers["set-cookie"] = cookie_header(request.scope, new_id, keeper.expiry_s)
        return answer

    @app.post(LOGOUT, include_in_schema=False)
    async def log_out(request: Request) -> Response:
        why = foreign_origin(request.scope)
        if why:
            return HTMLResponse(login_page(request, "/", f"Refused {why}."), 403)
        old = session_id(request.scope)
        if old and keeper is not None:
            await to_thread.run_sync(keeper.end, old)
        answer = RedirectResponse(to_app_path(request, LOGIN), status_code=303)
        answer.headers["set-cookie"] = cookie_header(request.scope, "", 0)
        return answer
