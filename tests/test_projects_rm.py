"""Removing and renaming projects against the real SeaweedFS bucket: `rm` deletes the
project's rows and the objects its tasks made under `<prefix>/<project id>/` (or keeps them
with --keep-objects) and its uploaded exports, leaves other projects' objects alone (another
store's under the same prefix too), and its id is never given again; `rename` moves nothing in
the bucket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from storyboard_cli.store import Store

STORY = "The storm rose. Tom climbed the stairs. Mara waited by the lens.\n"


def keys(s3_server, prefix: str, tasks: list[dict]) -> list[str]:
    """The objects under prefix that these tasks made (the session's bucket holds other
    tests' objects under the same prefixes)."""
    made = {t["id"] for t in tasks}
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", [])
                  if item["Key"].rsplit("/", 1)[-1].split(".")[0] in made)


def test_rm_deletes_the_projects_rows_and_objects_and_rename_moves_nothing(stack, s3_server):
    (stack.root / "story.txt").write_text(STORY, encoding="utf-8")
    first = stack.json("new", "story.txt", "--title", "lighthouse")["id"]
    second = stack.json("new", "story.txt", "--title", "harbour")["id"]
    for project in (first, second):
        stack.json("generate", str(project), "--no-wait")
    done = stack.burst()
    assert done.returncode == 0, done.stderr
    shot = stack.json("show", "lighthouse")["shots"][0]
    stack.json("regen-shot", f"{first}/1", "--no-wait")  # a second image of that shot
    assert stack.burst().returncode == 0

    my_tasks, their_tasks = stack.json("tasks", str(first)), stack.json("tasks", str(second))
    mine = keys(s3_server, f"projects/{first}/", my_tasks)
    theirs = keys(s3_server, f"projects/{second}/", their_tasks)
    # Every render's image (the regen's too) and the shot-list script.
    assert len(mine) == len(stack.json("show", "lighthouse")["shots"]) + 2 and theirs
    exported = stack.json("export", str(first), "--format", "zip", "--upload",
                          "-o", str(stack.root / "board.zip"))["key"]
    assert exported.startswith(f"projects/{first}/exports/")
    # Objects another store put under the same prefix (same bucket, same project id): an
    # image of its own task, an export uploaded before this project existed.
    strangers = [f"projects/{first}/shots/1/0ff1ce00-0000-4000-8000-000000000000.png",
                 f"projects/{first}/exports/20200101T000000Z-abcdef/old.zip"]
    for key in strangers:
        s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=b"not ours")

    renamed = stack.json("rename", "lighthouse", "lighthouse (winter)")
    assert renamed["shots"][0]["image_key"] != shot["image_key"]  # the regen's image
    assert keys(s3_server, f"projects/{first}/", my_tasks) == mine  # nothing moved

    refused = stack.run("rm", str(first))  # no terminal to ask on: --yes is needed
    assert refused.returncode == 2 and "needs --yes" in refused.stderr
    removed = stack.json("rm", "lighthouse (winter)", "--yes")
    assert removed["objects"] == {"bucket": s3_server.bucket, "prefixes": [f"projects/{first}/"],
                                  "deleted": len(mine) + 1, "kept": False}  # + the export
    assert (removed["id"], removed["tasks"]) == (first, 2)
    assert keys(s3_server, f"projects/{first}/", my_tasks) == []
    assert keys(s3_server, f"projects/{second}/", their_tasks) == theirs
    for key in strangers:
        assert s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read() \
            == b"not ours"
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket,
                                                Prefix=f"projects/{first}/exports/")
    assert exported not in [item["Key"] for item in listed.get("Contents", [])]
    with urllib.request.urlopen(stack.json("show", "harbour")["shots"][0]["image_url"]) as r:
        assert r.status == 200
    try:
        urllib.request.urlopen(shot["image_url"])
        raise AssertionError("a removed project's link still works")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404

    gone = stack.run("show", str(first))
    assert gone.returncode == 2 and f"no project with id or title '{first}' (it was removed " \
        "on " in gone.stderr
    store = Store(stack.root / "storyboard.db")
    assert store.db["shots"].count_where("project_id = ?", [first]) == 0
    assert store.db["tasks"].count_where("project_id = ?", [first]) == 0
    store.close()
    # The newest project's id is never given again.
    assert stack.json("new", "story.txt")["id"] == second + 1

    kept = stack.run("rm", "harbour", "--keep-objects", "--yes")
    assert kept.returncode == 0, kept.stderr
    assert "its bucket objects were kept" in kept.stdout
    assert keys(s3_server, f"projects/{second}/", their_tasks) == theirs
    assert stack.json("new", "story.txt")["id"] == second + 2


def test_rm_refuses_a_project_with_an_unfinished_task_and_changes_nothing(stack, s3_server):
    (stack.root / "story.txt").write_text(STORY, encoding="utf-8")
    project = stack.json("new", "story.txt")["id"]
    task = stack.json("generate", str(project), "--no-wait")["task_id"]
    refused = stack.run("rm", str(project), "--yes", "--json")
    assert refused.returncode == 2
    assert json.loads(refused.stdout) == {"error": (
        f"project {project} has 1 unfinished task(s); cancel them first: "
        f"storyboard cancel {task}")}
    assert stack.json("show", str(project))["task"]["id"] == task
