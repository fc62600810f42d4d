"""What a user names, found through the store, with errors that say which command to run.

The store's errors state the facts ("no project with id or title 'x'"); the words that send
a person to a command ("see `storyboard list`") are the service layer's, here, so the data
layer knows nothing of the CLI. The service's operations look projects and shots up, and
build project objects for a named task, only through these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storyboard_cli import ids, views
from storyboard_cli.store.projects import ProjectNotFound, TitleShared
from storyboard_cli.store.status import TaskStatus
from storyboard_contract.errors import NotFound, UsageError
from storyboard_contract.numbering import shot_label

if TYPE_CHECKING:
    from storyboard_cli.store import Store
    from storyboard_cli.views import FrameSize


def project(store: Store, ref: str) -> dict[str, Any]:
    """The project a user names: by id or exact title (Store.find_project)."""
    try:
        return store.find_project(ref)
    except ProjectNotFound as exc:
        if exc.removed_on:
            raise
        raise NotFound(f"{exc} (see `storyboard list`)") from None
    except TitleShared as exc:
        raise UsageError(f"{exc} (or tell them apart: storyboard rename ID TITLE)") from None


def project_view(store: Store, project_id: int, task_id: str | None,
                 frame_size: FrameSize) -> dict[str, Any]:
    """The project object (views.project_view); a task_id that is not one of the project's
    storyboard tasks is an error that says where they are listed."""
    try:
        return views.project_view(store, project_id, task_id, frame_size)
    except views.NotAStoryboardTask as exc:
        raise UsageError(f"{exc} (see `storyboard tasks {exc.project_id}`)") from None


def shot(store: Store, ref: ids.ShotRef) -> dict[str, Any]:
    """The shot a reference names: by id, or by number in the storyboard `show` lists.
    A shot of any other storyboard of its project (an older one, superseded, or a
    cancelled one) is refused: re-rendering it would change nothing `show` shows."""
    if ref.shot_id is not None:
        try:
            row = store.get_shot(ref.shot_id)
        except NotFound as exc:
            raise NotFound(f"{exc} (see `storyboard show PROJECT`)") from None
        project_id = row["project_id"]
    else:
        project_id = project(store, ref.project or "")["id"]
    boards = store.storyboards(project_id)
    current = views.shown_storyboard(boards)
    if ref.shot_id is None:
        if current is None:
            raise NotFound(f"project {project_id} has no storyboard yet: "
                           f"storyboard generate {project_id}")
        if ref.scene_shot is not None:
            row = store.labelled_shot(current["id"], *ref.scene_shot)
            asked = shot_label(0, *ref.scene_shot)
        else:
            row = store.numbered_shot(current["id"], ref.number or 0)
            asked = str(ref.number)
        if row is None:
            raise NotFound(f"project {project_id}'s storyboard has "
                           f"{store.shot_count(current['id'])} shots; no shot {asked} "
                           f"(see `storyboard show {project_id}`)")
        return row
    if current is None or row["task_id"] != current["id"]:
        board = next(b for b in boards if b["id"] == row["task_id"])
        kind = "a cancelled" if board["status"] == TaskStatus.CANCELLED else "an older"
        now_shown = (f"the one `storyboard show {project_id}` lists is task "
                     f"{current['id'][:8]}'s" if current else "it has no other")
        raise UsageError(
            f"shot {row['id']} is shot {row['idx'] + 1} of {kind} storyboard of project "
            f"{project_id} (task {board['id'][:8]}); {now_shown}: name its shots as "
            f"{project_id}/NUMBER"
        )
    return row
