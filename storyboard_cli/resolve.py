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
from storyboard_cli.store.revisions import revision_board
from storyboard_cli.store.status import TaskStatus
from storyboard_cli.store.tasks import replanning, shown_storyboard
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
    current = shown_storyboard(boards)
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
            raise no_shot(project_id, store.shot_count(current["id"]), asked)
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


def no_shot(project_id: int, count: int, number: int | str) -> NotFound:
    """No shot `number` (a running number, or a screenplay's label: 3.2) in a storyboard of
    `count` shots."""
    return NotFound(f"project {project_id}'s storyboard has {count} shots; no shot {number} "
                    f"(see `storyboard show {project_id}`)")


def board(store: Store, project_id: int) -> dict[str, Any]:
    """The storyboard task whose shots edits change: the one `show` lists, while no new plan
    is being made (once saved, that plan would be shown instead of the edited one)."""
    boards = store.storyboards(project_id)
    busy = replanning(boards)
    if busy is not None:
        raise UsageError(f"project {project_id} is being planned again (task {busy['id'][:8]}); "
                         f"edit its storyboard once the plan is saved: storyboard status "
                         f"{busy['id'][:8]} --watch")
    shown = shown_storyboard(boards)
    if shown is None:
        raise NotFound(f"project {project_id} has no storyboard yet: storyboard generate "
                       f"{project_id}")
    return shown


def revision(store: Store, project_id: int, number: int) -> dict[str, Any]:
    """The storyboard of revision `number` of a project's story (revision_board)."""
    count = store.current_revision(project_id)
    if not 1 <= number <= count:
        raise NotFound(f"project {project_id} has revisions 1 to {count} of its story; no "
                       f"revision {number} (see `storyboard diff {project_id}`)")
    found = revision_board(store.storyboards(project_id), number)
    if found is None:
        raise UsageError(f"revision {number} of project {project_id}'s story has no storyboard "
                         f"(its plan failed, was cancelled or is still being made: storyboard "
                         f"tasks {project_id})")
    return found
