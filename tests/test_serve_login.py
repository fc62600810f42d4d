"""Logging in to the web board of `storyboard serve` over plain HTTP: the first visit meets a
login form that takes the API token once, the session lives in an HttpOnly, SameSite=Strict
cookie whose id only the browser holds, state changes riding a session need the board's own
Origin, wrong tokens are counted, a session ends at logout, at its expiry and when the token
changes, and neither the token nor a session id reaches the access log. The bearer header
works as before. `serve` prints the one URL to open, and `storyboard token` the token."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
import time
from urllib.parse import unquote

import httpx
from fixtures_queue import storyboard_argv
from fixtures_serve import log_in, start_serve
from fixtures_stack import clean_env

from storyboard_cli.server.login import MAX_FAILURES
from storyboard_cli.server.sessions import COOKIE


def set_cookie(answer: httpx.Response) -> dict[str, str]:
    """The attributes of the answer's Set-Cookie: name=value first, then the others (a flag
    maps to "")."""
    parts = [p.strip() for p in answer.headers["set-cookie"].split(";")]
    name, _, value = parts[0].partition("=")
    attributes = {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}
    return {"name": name, "value": value, **attributes}


def test_the_first_visit_goes_to_a_login_form_that_asks_for_the_token_in_its_body(served):
    with served.browser() as browser:
        first = browser.get("/projects/1", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/projects/1"
        form = browser.get(first.headers["location"])
    assert form.status_code == 200
    page = form.text
    assert '<form method="post" action="login"' in page
    assert 'name="token" type="password"' in page
    assert '<input type="hidden" name="next" value="/projects/1">' in page
    assert "storyboard token" in page


def test_a_login_keeps_a_session_in_an_httponly_samesite_cookie_until_logout(served):
    with served.browser() as browser:
        answer = log_in(browser, served.token, "/projects/1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/projects/1"
        cookie = set_cookie(answer)
        assert cookie["name"] == COOKIE
        assert len(cookie["value"]) >= 40 and served.token not in cookie["value"]
        assert {"httponly", "samesite", "path", "max-age"} <= cookie.keys()
        assert cookie["samesite"] == "Strict" and cookie["path"] == "/"
        assert int(cookie["max-age"]) == 7 * 24 * 3600
        assert "secure" not in cookie  # plain http here; under https it is Secure

        # The session opens the pages and the API, with no token sent.
        assert browser.get("/", follow_redirects=False).status_code == 200
        assert browser.get("/api/projects").status_code == 200
        made = browser.post("/api/projects", json={"title": "logged in",
                                                   "story_text": "Lin opens the door."})
        assert made.status_code == 200, made.text

        out = browser.post("/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert set_cookie(out)["max-age"] == "0"
    # The server forgot it: the old cookie, sent again, opens nothing.
    with served.browser() as replay:
        replay.cookies.set(COOKIE, cookie["value"])
        refused = replay.get("/api/projects")
        assert refused.status_code == 401
        assert "log in again" in refused.json()["error"]
        assert replay.get("/", follow_redirects=False).status_code == 303


def test_a_change_riding_a_session_needs_the_boards_own_origin(served):
    story = {"title": "forged", "story_text": "Someone else's page sends this."}
    with served.browser() as browser:
        assert log_in(browser, served.token).status_code == 303
        for origin, why in [
            (None, "without an Origin header"),
            ("http://127.0.0.1:1", "from another origin"),  # the same host, another port
            ("https://evil.example", "from another origin"),
        ]:
            headers = {} if origin is None else {"Origin": origin}
            with httpx.Client(base_url=served.url, cookies=browser.cookies,
                              headers=headers) as elsewhere:
                answer = elsewhere.post("/api/projects", json=story)
            assert answer.status_code == 403, answer.text
            assert why in answer.json()["error"]
        # Another site's page may not even read through the session.
        cross = browser.get("/api/projects", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert browser.get("/api/projects", headers={"Sec-Fetch-Site": "same-origin"}
                           ).status_code == 200
    with served.client() as api:
        titles = [p["title"] for p in api.get("/api/projects").json()]
        # The bearer header is no cookie: a client that sends it needs no Origin.
        assert api.post("/api/projects", json={**story, "title": "by token"}).status_code == 200
    assert "forged" not in titles


def test_the_token_is_compared_whole_and_wrong_ones_make_the_address_wait(served):
    # A server of its own: the wait holds for every browser at this address.
    proc, url = start_serve(served.stack, served.token)
    try:
        with httpx.Client(base_url=url, timeout=30) as browser:
            wrong = [served.token[:-1], served.token + "x", "", served.token.upper(), "guess"]
            for given in wrong[:MAX_FAILURES]:
                answer = log_in(browser, given)
                assert answer.status_code == 401, given
                assert "Wrong token" in answer.text
                assert "set-cookie" not in answer.headers
            held = log_in(browser, served.token)
            assert held.status_code == 429
            assert 50 <= int(held.headers["retry-after"]) <= 60
            assert "set-cookie" not in held.headers
            assert browser.get("/api/projects").status_code == 401
    finally:
        proc.stop()


def test_a_session_ends_at_its_expiry_and_when_the_token_changes(served):
    proc, url = start_serve(served.stack, served.token,
                            env={"STORYBOARD_SERVER_SESSION_EXPIRY": "2"})
    try:
        with httpx.Client(base_url=url, timeout=30) as browser:
            answer = log_in(browser, served.token)
            assert set_cookie(answer)["max-age"] == "2"
            assert browser.get("/api/projects").status_code == 200
            time.sleep(2.5)
            assert browser.get("/api/projects").status_code == 401
            assert browser.get("/", follow_redirects=False).status_code == 303
    finally:
        proc.stop()
    # Logged in under one token, the session dies with it: a new token opens a new era.
    proc, url = start_serve(served.stack, served.token)
    try:
        with httpx.Client(base_url=url, timeout=30) as browser:
            log_in(browser, served.token)
            assert browser.get("/api/projects").status_code == 200
            kept = browser.cookies[COOKIE]
    finally:
        proc.stop()
    proc, url = start_serve(served.stack, secrets.token_urlsafe(24))
    try:
        with httpx.Client(base_url=url, timeout=30) as browser:
            browser.cookies.set(COOKIE, kept)
            assert browser.get("/api/projects").status_code == 401
    finally:
        proc.stop()
    # The store holds digests, never a session's id.
    with sqlite3.connect(served.stack.root / "storyboard.db") as db:
        stored = [row[0] for row in db.execute("select digest from web_sessions")]
    assert stored and kept not in stored and all(len(d) == 64 for d in stored)


def test_neither_the_token_nor_a_session_id_reaches_the_access_log(served):
    with served.browser() as browser:
        answer = log_in(browser, served.token, "/projects/1")
        session = set_cookie(answer)["value"]
        browser.get("/api/projects")
        browser.post("/logout")
    log = served.log
    assert '"POST /login HTTP/1.1" 303' in log and '"GET /api/projects HTTP/1.1" 200' in log
    for secret in (served.token, session, unquote(session)):
        assert secret not in log


def test_serve_prints_one_url_to_open_and_how_to_log_in(served):
    urls = set(re.findall(r"https?://[^\s)]+", served.log))
    assert urls == {served.url + "/"}
    assert f"Open the board: {served.url}/" in served.log
    # The CLI as it can be typed here (its path when `storyboard` on PATH is another).
    assert re.search(r"`\S*storyboard token` prints it", served.log)
    port = served.url.rsplit(":", 1)[1]
    assert f"ssh -L {port}:127.0.0.1:{port} THIS_HOST" in served.log


def storyboard_in(folder, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*storyboard_argv(), *args], cwd=folder, env=clean_env(),
                          capture_output=True, text=True, timeout=60)


def test_storyboard_token_prints_the_token_and_where_it_lives(tmp_path):
    (tmp_path / "storyboard.toml").write_text('[store]\npath = "sb.db"\n')
    none = storyboard_in(tmp_path, "token")
    assert none.returncode == 2 and none.stdout == ""
    assert "no API token is set: `storyboard up` generates one into .env" in none.stderr

    token = secrets.token_urlsafe(32)
    (tmp_path / ".env").write_text(f"STORYBOARD_API_TOKEN={token}\n")
    shown = storyboard_in(tmp_path, "token")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == token + "\n"  # alone on stdout: $(storyboard token) works
    assert f"from .env $STORYBOARD_API_TOKEN ({tmp_path / '.env'})" in shown.stderr
    as_json = json.loads(storyboard_in(tmp_path, "token", "--json").stdout)
    assert as_json == {"token": token,
                       "source": f".env $STORYBOARD_API_TOKEN ({tmp_path / '.env'})"}
    remote = storyboard_in(tmp_path, "--server", "http://127.0.0.1:1", "token")
    assert remote.returncode == 2 and "works on this machine only" in remote.stderr
