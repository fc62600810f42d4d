"""The web pages of `storyboard serve`: `/` lists the projects (and makes new ones), and
`/projects/{id}` shows a project's board: the page of `export --format html` (one template,
board/html.py, fetched from /api/projects/{id}/board), made editable by the board's script.

The pages are the same shell for everyone and carry no data: their scripts (static/: api.js,
projects.js, board.js, and board.css; plain files of the package, JavaScript modules, no build
step, nothing from another site) fetch everything from /api with the browser's session
cookie. With an API token set, a
browser without a session is sent to the login form first (login.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from storyboard_cli.board import FORMATS
from storyboard_cli.server import routes
from storyboard_cli.server.login import login_redirect
from storyboard_cli.server.sessions import AUTH
from storyboard_cli.server.shell import STATIC, document, script
from storyboard_contract.wire import SHOT_PHRASES


def index_page(request: Request) -> str:
    body = (
        '<main class="wrap"><h1>Projects</h1>\n<p id="state" role="status"></p>\n'
        '<div class="scroll"><table class="projects"><thead><tr><th>id</th><th>title</th>'
        "<th>style</th><th>aspect</th><th>shots</th><th>last task</th></tr></thead>"
        "<tbody></tbody></table></div>\n"
        '<form class="new stack"><h2>New project</h2>'
        '<label>Title <input name="title" required></label>'
        '<label>Style <input name="style" placeholder="movie, anime, noir, watercolor, ...">'
        "</label>"
        '<label>Story <textarea name="story_text" required></textarea></label>'
        # Enabled by the script: a click before it runs must not submit the story natively.
        '<button type="submit" disabled>Create project</button></form></main>\n'
    )
    return document(request, "storyboard", body + script("projects"))


def board_page(request: Request, project: str) -> str:
    formats = "".join(f'<option value="{f}">{f}</option>' for f in FORMATS)
    tools = (
        '<button id="generate" type="button">Generate storyboard</button>'
        '<button id="render-stale" type="button" disabled>Render stale panels</button>'
        '<button id="undo" type="button">Undo</button>'
        '<span class="export"><select id="export-format" aria-label="Export format">'
        f'{formats}</select><a id="download" class="button" download>Download</a></span>'
        '<progress id="progress" max="1" value="0" aria-label="Progress"></progress>'
        '<span id="state" role="status"></span>'
    )
    cameras = escape(json.dumps(list(SHOT_PHRASES)))
    body = (f'<div id="app" data-project="{escape(project)}" data-cameras="{cameras}">'
            '<div id="warnings" class="warnings" role="status"></div>'
            '<div id="board"></div></div>\n')
    return document(request, "storyboard", body + script("board"), tools)


def add_routes(app: FastAPI, needs_login: bool) -> None:
    """The pages, and their script and style. With `needs_login`, a browser without a session
    goes to the login form first."""
    app.mount(STATIC, StaticFiles(packages=[("storyboard_cli.server", "static")]),
              name="static")

    def gate(request: Request, make: Callable[[], str]) -> Response:
        if needs_login and not request.scope.get(AUTH):
            return login_redirect(request)
        return HTMLResponse(make())

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> Response:
        return gate(request, lambda: index_page(request))

    @app.get(routes.PROJECT, response_class=HTMLResponse, include_in_schema=False)
    async def project_board(request: Request, project: str) -> Response:
        return gate(request, lambda: board_page(request, project))
