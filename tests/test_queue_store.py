"""Task state in the store: keyed writes, so a job that runs twice has the effect of one run,
and a task's progress and outcome are derived from its renders (never counted)."""

from __future__ import annotations

import pytest

from storyboard_cli import views
from storyboard_cli.store import Store
from storyboard_contract.wire import shot_seed


def planned(n: int, task_id: str) -> list[dict]:
    return [
        {"idx": i, "description": f"Shot {i}.", "prompt": f"prompt {i}", "negative_prompt": "",
         "camera": "wide", "dialogue": None, "duration": 3.0, "seed": shot_seed(task_id, i)}
        for i in range(n)
    ]


@pytest.fixture()
def store(tmp_path) -> Store:
    s = Store(tmp_path / "sb.db")
    yield s
    s.close()


@pytest.fixture()
def task(store: Store) -> dict:
    project = store.create_project("p", "A story.", "movie")
    return store.create_task("storyboard", project["id"])


def finish(store: Store, task_id: str, shot_id: int, key: str = "k") -> str:
    return store.finish_render(task_id, shot_id, f"{key}/{shot_id}.png", f"https://x/{key}",
                               "2030-01-01T00:00:00+00:00", 7)


def test_saving_the_same_plan_twice_keeps_one_row_per_shot_and_render(store, task):
    for _ in range(2):
        store.save_plan(task["id"], task["project_id"], planned(3, task["id"]), with_renders=True)
    assert store.db["shots"].count == 3
    assert store.db["renders"].count == 3
    assert store.progress(task["id"]) == {"done": 0, "total": 3}


def test_a_render_recorded_twice_counts_once_and_the_task_succeeds_when_all_are_done(store, task):
    store.save_plan(task["id"], task["project_id"], planned(2, task["id"]), with_renders=True)
    first, second = (r["shot_id"] for r in store.task_renders(task["id"]))
    assert finish(store, task["id"], first) == "pending"
    assert finish(store, task["id"], first) == "pending"
    assert store.progress(task["id"]) == {"done": 1, "total": 2}
    assert finish(store, task["id"], second) == "succeeded"
    view = views.task_view(store, task["id"])
    assert view["progress"] == {"done": 2, "total": 2}
    assert view["finished_at"] is not None
    assert [s["image_key"] for s in view["shots"]] == [f"k/{first}.png", f"k/{second}.png"]


def test_a_task_fails_only_once_nothing_is_left_to_run_and_names_the_first_failure(store, task):
    store.save_plan(task["id"], task["project_id"], planned(3, task["id"]), with_renders=True)
    a, b, c = (r["shot_id"] for r in store.task_renders(task["id"]))
    store.start_task(task["id"])
    assert store.fail_render(task["id"], b, "cannot reach the GPU daemon") == "running"
    assert finish(store, task["id"], a) == "running"
    assert store.fail_render(task["id"], c, "bucket down") == "failed"
    t = store.get_task(task["id"])
    assert t["error"] == "2 of 3 shots failed: cannot reach the GPU daemon"
    assert store.progress(task["id"]) == {"done": 1, "total": 3}


def test_reopening_a_failed_task_resets_only_the_failed_renders(store, task):
    store.save_plan(task["id"], task["project_id"], planned(2, task["id"]), with_renders=True)
    a, b = (r["shot_id"] for r in store.task_renders(task["id"]))
    finish(store, task["id"], a)
    store.fail_render(task["id"], b, "daemon down")
    store.reopen_task(task["id"], [a, b])
    states = {r["shot_id"]: r["status"] for r in store.task_renders(task["id"])}
    assert states == {a: "done", b: "pending"}
    t = store.get_task(task["id"])
    assert (t["status"], t["error"], t["finished_at"]) == ("pending", None, None)
    assert finish(store, task["id"], b) == "succeeded"


def test_a_late_duplicate_of_an_older_render_never_replaces_a_newer_regen_image(store, task):
    store.save_plan(task["id"], task["project_id"], planned(1, task["id"]), with_renders=True)
    shot_id = store.task_renders(task["id"])[0]["shot_id"]
    regen = store.create_task("shot_generation", task["project_id"], shot_id=shot_id,
                              params={"prompt": "new prompt"})
    store.add_render(regen["id"], shot_id, 42)
    store.finish_render(regen["id"], shot_id, "regen.png", "https://x/regen", "2030", 42,
                        prompt="new prompt")
    finish(store, task["id"], shot_id, key="old")  # the storyboard's render arrives late
    shot = store.get_shot(shot_id)
    assert (shot["image_key"], shot["seed"], shot["prompt"]) == ("regen.png", 42, "new prompt")
    assert store.get_task(task["id"])["status"] == "succeeded"


def test_a_plan_only_task_succeeds_with_its_shots_and_no_renders(store, task):
    store.save_plan(task["id"], task["project_id"], planned(2, task["id"]), with_renders=False)
    store.succeed_task(task["id"])
    view = views.task_view(store, task["id"])
    assert view["status"] == "succeeded" and len(view["shots"]) == 2
    assert all(s["image_key"] is None for s in view["shots"])


def test_shot_seeds_are_fixed_by_task_and_index_and_fit_32_bits():
    assert shot_seed("t1", 0) == shot_seed("t1", 0)
    seeds = {shot_seed("t1", i) for i in range(50)} | {shot_seed("t2", 0)}
    assert len(seeds) == 51
    assert all(0 <= s < 2**32 for s in seeds)
