"""The paths of the HTTP API, declared once: the server's route decorators take these templates
(under API, the router's prefix) and the remote client fills them in with api_path. A
reference (a project title with "/", PROJECT/NUMBER) travels as one encoded segment, which
the `{name:path}` parameters take whole.

Routes with a suffix come before the bare project route in the server: a project may be named
by a title that ends in "/cast".
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

API = "/api"

PROJECTS = "/projects"
PROJECT = "/projects/{project:path}"
GENERATE_STORYBOARD = PROJECT + "/generate-storyboard"
CAST = PROJECT + "/cast"
SETTINGS = PROJECT + "/settings"
LINKS = PROJECT + "/links"
BOARD = PROJECT + "/board"
EXPORT = PROJECT + "/export"
# Editing the storyboard a project shows (shot numbers in the bodies), its history, and the
# revisions of its story.
SHOTS_SPLIT = PROJECT + "/shots/split"
SHOTS_MERGE = PROJECT + "/shots/merge"
SHOTS_MOVE = PROJECT + "/shots/move"
SHOTS_INSERT = PROJECT + "/shots/insert"
SHOTS_DELETE = PROJECT + "/shots/delete"
LOG = PROJECT + "/log"
UNDO = PROJECT + "/undo"
REVISIONS = PROJECT + "/revisions"
DIFF = PROJECT + "/diff"
SHOT = "/shots/{shot:path}"
GENERATE_SHOT = SHOT + "/generate"
SHOT_NOTE = SHOT + "/note"
SHOT_APPROVE = SHOT + "/approve"
SHOT_UNAPPROVE = SHOT + "/unapprove"
TASKS = "/tasks"
TASK = "/tasks/{task}"
TASK_EVENTS = TASK + "/events"
RETRY = TASK + "/retry"
CANCEL = TASK + "/cancel"
WORKERS = "/workers"
IMAGE = "/images/{key:path}"

_PARAMETER = re.compile(r"\{(\w+)(?::path)?\}")


def api_path(route: str, query: dict[str, Any] | None = None, **refs: str | int) -> str:
    """The request path of `route` under API, each `{name}` filled in with refs[name] as one
    encoded segment: api_path(CAST, project="a/b") is /api/projects/a%2Fb/cast; then `query`
    (None values left out) as its query string."""
    # surrogateescape: bytes of a command line that are not UTF-8 travel as they were typed
    # (the server names nothing by them: a 404, or its check's 422).
    path = API + _PARAMETER.sub(
        lambda m: quote(str(refs[m.group(1)]), safe="", errors="surrogateescape"), route)
    given = {k: v for k, v in (query or {}).items() if v is not None}
    return f"{path}?{urlencode(given, errors='surrogateescape')}" if given else path
