"""Edits and revisions rendered for real, as a user runs them: `storyboard` subprocesses against
a real Redis, SeaweedFS, the sketch GPU daemon and a `storyboard worker`. `generate --stale`
renders exactly the stale panels; a story revision renders only its new and changed shots and
keeps every other panel (image keys unchanged); a retry leaves an approved panel alone."""

from __future__ import annotations

import json
from typing import Any

from fixtures_queue import QueueStack, stored_storyboard, wait_status
from test_queue_e2e import png
from test_revisions import B2, F2, A, B, C, D, E, F


def project_with(stack: QueueStack, *sentences: str) -> str:
    (stack.root / "story.txt").write_text(" ".join(sentences) + "\n", encoding="utf-8")
    project = str(stack.json("new", "story.txt", "--title", "lighthouse")["id"])
    assert stack.json("generate", project, "--timeout", "90")["status"] == "succeeded"
    return project


def shots(stack: QueueStack, project: str, *args: str) -> list[dict[str, Any]]:
    return stack.json("show", project, *args)["shots"]


def test_generate_stale_renders_exactly_the_stale_panels(stack):
    stack.start_worker()
    project = project_with(stack, A, B, C, D)
    stack.json("shot", f"{project}/2", "--camera", "close-up")
    stack.json("shots", project, "split", "3", "--at", "by the great lens")
    stack.json("approve", f"{project}/1")
    stack.json("shot", f"{project}/1", "--action", "Lightning over the bay.")
    stack.json("note", f"{project}/5", "keep the boat small")
    before = shots(stack, project)
    stale = {s["id"] for s in before if s["stale"] and not s["approved"]}
    assert [s["number"] for s in before if s["id"] in stale] == [2, 3, 4]
    assert before[0]["stale"] and before[0]["approved"]

    task = stack.json("generate", project, "--stale", "--timeout", "90")
    assert (task["status"], task["stale"], task["progress"]) == (
        "succeeded", True, {"done": 3, "total": 3})
    assert {s["id"] for s in task["shots"]} == stale
    after = shots(stack, project)
    assert [s["id"] for s in after] == [s["id"] for s in before]
    for old, new in zip(before, after, strict=True):
        if new["id"] in stale:
            assert new["image_key"] != old["image_key"] and task["id"] in new["image_key"]
            assert not new["stale"]
        else:
            assert (new["image_key"], new["stale"]) == (old["image_key"], old["stale"])
    # The close-up is drawn anew (the sketch writes the shot size on its panel).
    assert png(after[1]["image_url"]).tobytes() != png(before[1]["image_url"]).tobytes()
    # Nothing stale is left but the approved panel, which only regen-shot renders.
    again = stack.run("generate", project, "--stale")
    assert again.returncode == 2 and "has no stale panels" in again.stderr
    assert "[approved] [stale]" in stack.run("show", project).stdout


def test_a_revision_renders_only_its_new_and_changed_shots_and_keeps_every_other_panel(stack):
    stack.start_worker()
    project = project_with(stack, A, B, C, D, F)
    stack.json("note", f"{project}/1", "darker sky")
    stack.json("approve", f"{project}/2")
    before = shots(stack, project)
    assert [s["description"] for s in before] == [A, B, C, D, F]

    (stack.root / "v2.txt").write_text(" ".join([A, B2, D, E, F2]) + "\n", encoding="utf-8")
    task = stack.json("update", project, "v2.txt", "--timeout", "90")
    assert (task["status"], task["revision"]) == ("succeeded", 2)
    after = shots(stack, project)
    assert [s["description"] for s in after] == [A, B2, D, E, F2]
    assert [s["revised"] for s in after] == [None, "changed", None, "new", "changed"]
    # Rendered: the new shot and the changed one not approved; nothing else.
    assert task["progress"] == {"done": 2, "total": 2}
    assert [s["number"] for s in after if task["id"] in (s["image_key"] or "")] == [4, 5]
    # Kept, image keys unchanged: the unchanged shots (with their notes and seeds) and the
    # approved one (its text changed: its panel is kept, and stale).
    for new, old in ((after[0], before[0]), (after[2], before[3]), (after[1], before[1])):
        assert (new["image_key"], new["seed"], new["notes"]) == (
            old["image_key"], old["seed"], old["notes"])
    assert after[0]["notes"] == "darker sky"
    assert after[1]["approved"] and after[1]["stale"]
    assert task["id"] in after[3]["image_key"] and task["id"] in after[4]["image_key"]
    assert after[4]["seed"] == before[4]["seed"]  # a changed shot keeps its look

    diff = stack.json("diff", project)
    assert ([s["description"] for s in diff["added"]], [s["description"] for s in diff["removed"]],
            [c["to"]["description"] for c in diff["changed"]], diff["unchanged"]) == (
        [E], [C], [B2, F2], 2)
    older = shots(stack, project, "--revision", "1")
    assert [(s["description"], s["image_key"]) for s in older] == [
        (s["description"], s["image_key"]) for s in before]
    log = stack.json("log", project)
    assert (log[0]["op"], log[0]["task_id"]) == ("update", task["id"])
    nothing = stack.run("undo", project)
    assert nothing.returncode == 2 and "nothing to undo" in nothing.stderr


def test_a_retry_leaves_an_approved_panel_alone(stack):
    store = stack.store()
    try:
        project = store.create_project("lighthouse", "Once.", "movie")["id"]
        task = stored_storyboard(store, project, 3, rendered=False)
        first, second, third = (r["shot_id"] for r in store.task_renders(task))
        store.finish_render(task, first, "k/1.png", "https://x/1", "2030-01-01", 1)
        store.fail_render(task, second, "the daemon refused")
        assert store.fail_render(task, third, "the daemon refused") == "failed"
    finally:
        store.close()
    stack.json("approve", f"{project}/2")
    retried = stack.json("retry", task, "--no-wait")
    assert retried["retried"] == {"planning": False, "shots": [third]}
    stack.start_worker()
    view = wait_status(stack, task, ("succeeded", "failed"), timeout=90)
    assert (view["status"], view["progress"]) == ("succeeded", {"done": 2, "total": 2})
    (approved,) = [s for s in json.loads(stack.run("show", str(project), "--json").stdout)[
        "shots"] if s["number"] == 2]
    assert approved["approved"] and approved["image_key"] is None


def test_the_edit_routes_answer_as_the_cli_with_404_and_422_for_bad_input(served):
    stack = served.stack
    with served.client() as api:
        project = api.post("/api/projects", json={
            "title": "edits over http", "story_text": f"{A} {B} {C}"}).json()["id"]
        task = api.post(f"/api/projects/{project}/generate-storyboard",
                        json={"no_images": True}).json()["task_id"]
        assert served.wait_task(api, task)["status"] == "succeeded"
        edited = api.patch(f"/api/shots/{project}/2", headers={"X-Storyboard-User": "lin"},
                           json={"camera": "close-up", "move": "Pan-Right", "dialogue": [
                               {"speaker": "Tom", "line": "Who is there?"}, "Mara: Me."]})
        assert edited.status_code == 200, edited.text
        (shot,) = edited.json()["shots"]
        assert (shot["camera"], shot["move"], shot["dialogue"]) == ("close-up", "pan right", [
            {"speaker": "Tom", "line": "Who is there?"}, {"speaker": "Mara", "line": "Me."}])
        assert edited.json()["edit"]["by"] == "lin"
        assert api.post(f"/api/projects/{project}/shots/split",
                        json={"shot": 3, "at": "by the great lens"}).status_code == 200
        assert [s["number"] for s in api.get(f"/api/projects/{project}").json()["shots"]] == [
            1, 2, 3, 4]
        log = api.get(f"/api/projects/{project}/log").json()
        assert [(e["op"], e["by"]) for e in log] == [("split", "api"), ("shot", "lin")]
        # The same refusals as the CLI's, with their statuses.
        for method, path, body, status, says in (
                ("PATCH", f"/api/shots/{project}/9", {"camera": "wide"}, 404, "no shot 9"),
                ("PATCH", f"/api/shots/{project}/1", {"lens": "35mm"}, 422,
                 "unknown shot field 'lens'"),
                ("PATCH", f"/api/shots/{project}/1", {"action": ""}, 422,
                 "--action must not be empty"),
                ("PATCH", f"/api/shots/{project}/1", {"move": "orbit"}, 422,
                 "--move 'orbit': use one of static, push in"),
                ("POST", f"/api/projects/{project}/shots/merge", {"shots": [3, 3]}, 422,
                 "merge takes two shots"),
                ("POST", f"/api/projects/{project}/shots/move", {"shot": 1, "to": 99}, 422,
                 "move a shot to 1 to 4"),
                ("POST", f"/api/projects/{project}/revisions", {"story_text": " "}, 422,
                 "the story is empty"),
                ("GET", f"/api/projects/{project}/diff?from=7", None, 404, "no revision 7")):
            answer = api.request(method, path, json=body)
            assert (answer.status_code, set(answer.json())) == (status, {"error"}), path
            assert says in answer.json()["error"]
        assert api.get(f"/api/projects/{project}/log").json() == log
        undone = api.post(f"/api/projects/{project}/undo").json()
        assert undone["edit"]["undoes"] == log[0]["id"]
        assert stack.json("log", str(project))[0]["op"] == "undo"
