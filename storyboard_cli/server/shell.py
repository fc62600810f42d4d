"""What every page of `storyboard serve` is made in: the document around its body, with the
board's style and the top bar (the login form's page too)."""

from __future__ import annotations

from html import escape

from fastapi import Request

from storyboard_cli.board.html import CSS as BOARD_CSS
from storyboard_cli.server.sessions import AUTH

HTML = "text/html; charset=utf-8"
STATIC = "/static"


def document(request: Request, title: str, body: str, nav: str = "") -> str:
    """A page: links and API calls are relative to <base>, so it works under a proxy's root
    path as well. `nav`: what the top bar shows after the home link."""
    root = escape(request.scope.get("root_path", "").rstrip("/") + "/")
    logout = ""
    if request.scope.get(AUTH) == "session":
        logout = ('<form method="post" action="logout" class="logout">'
                  '<button type="submit">Log out</button></form>')
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<base href="{root}">\n<title>{escape(title)}</title>\n'
        f'<style>{BOARD_CSS}</style>\n'
        f'<link rel="stylesheet" href="{STATIC.lstrip("/")}/board.css">\n</head>\n<body>\n'
        f'<nav class="bar"><a href="./">storyboard</a>{nav}'
        f'<span class="grow"></span>{logout}</nav>\n{body}</body>\n</html>\n'
    )


def script(name: str) -> str:
    """The page's script: a module of static/ (modules load after the page, in order)."""
    return f'<script type="module" src="{STATIC.lstrip("/")}/{name}.js"></script>\n'
