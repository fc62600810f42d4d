"""The SQLite store: projects, their cast, tasks, shots and per-shot renders.

Several worker processes write at once, so the database runs in WAL mode with a busy
timeout. Every write a job may repeat is keyed by ids (task id, shot index, shot id), so a
job that runs twice has the effect of running once.

Tables:
  projects    a story (prose, or a Fountain or Final Draft screenplay with its parsed form),
              its style and its frame aspect
  characters  a project's cast: name + visual description (from the planner, or the user's)
  tasks       one `storyboard` or `shot_generation` run (id = the RQ job id, a uuid4); a
              storyboard task keeps the key of the shot-list script the daemon uploaded
  shots       the shot list a storyboard task planned, with what a storyboard artist works
              with (camera, move, action, dialogue, characters, duration, prompt, seed; a
              screenplay's scene, heading and place in the scene: shot 3.2);
              image_key/url are the latest render; the writer's notes and approval; `edited`
              and `drawn` (stale while edited > drawn) and `revised` (new | changed)
  renders     one row per (task, shot) render: status, diffusion step, result; a task's
              progress is derived from these rows, so it can never double-count. `claim`
              is the RQ job that renders it (renders.py)
  story_revisions  every story a project has had, numbered from 1, with its format and
              parsed screenplay
  edits       the history of edits of a storyboard: who, when, what, and the rows' values
              before and after (for an exact undo)
  removed_projects  the ids (and titles) of removed projects: an id is never given twice, so
              a script's `show 5` never meets another project, nor its bucket prefix

Shot dialogue ([{"speaker", "line"}]) and characters ([name]) are JSON text columns.

The package, by concern:
  schema      the tables as migrations, each registered once by @migration, and migrate()
  connection  opening a store: WAL, busy timeout, one process migrates a new file at a time
  status      TaskType, TaskStatus, RenderStatus (str enums) and the SQL lists made of them
  store       Store: the parts below as one object
  base        Rows: the connection, reads as dicts, the write transaction
  projects    projects, their removal and their cast
  tasks       tasks and their state: start, succeed, fail, cancel, reopen, settle
  plans       the shots a storyboard task planned, and their links
  renders     renders and the windows of shots render jobs claim
  revisions   story revisions, and the storyboard of each
  edits       edits through a Board (one transaction each), their history and undo

Store is one class made of those parts as mixins over Rows rather than an object holding one
per part (store.renders.finish): the parts share one connection and write in one another's
transactions (a saved plan adds shots, cast and renders; a finished render settles its task),
and every caller (jobs, worker, service, tests) keeps the one flat object it always had.

The rows become what the CLI prints in storyboard_cli/views.py, outside the store; errors
here state facts, and the service layer (storyboard_cli/resolve.py) adds which command to
run. `Store` is loaded on first use (below): a module that needs only the statuses (progress
lines, the CLI's text) imports store.status without sqlite3 and the rest of the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyboard_cli.store.store import Store

__all__ = ["Store"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from storyboard_cli.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
