"""The storyboard's data end to end, as a writer uses it: a project's frame aspect, the fields a
storyboard artist works with, and a cast whose descriptions go into every prompt of a shot
that shows them, with real Redis, SeaweedFS, GPU daemons (sketch and a tiny diffusers
pipeline) and `storyboard worker` processes."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timezone

import av
from test_queue_e2e import png

STORY = (
    "Lin unlocked the old bookshop at dawn and lit the lantern in the window. Tom waited "
    "outside in the rain with a parcel under his arm. \u201cYou are early today,\u201d Lin said. "
    "Tom smiled and handed her the parcel.\n\n"
    "The street outside was empty. Lin looked up at Tom. \u201cWhere did you find it?\u201d "
    "she asked. He only shook his head and walked away into the rain.\n"
)


def new_project(stack, *args: str) -> dict:
    (stack.root / "story.txt").write_text(STORY, encoding="utf-8")
    return stack.json("new", "story.txt", "--title", "bookshop", *args)


def descriptions_in_prompts(project: dict) -> None:
    """Each character a shot shows is in its rendered prompt as `name (description)`."""
    described = {c["name"]: f"{c['name']} ({c['description']})" for c in project["cast"]}
    for shot in project["shots"]:
        for name in shot["characters"]:
            assert described[name] in shot["image_prompt"], (shot["number"], shot["image_prompt"])


def test_two_named_characters_keep_their_descriptions_in_every_prompt_that_shows_them(stack):
    stack.start_worker()
    created = new_project(stack, "--aspect", "9:16")
    assert (created["aspect"], created["width"], created["height"]) == ("9:16", 192, 344)
    project_id = str(created["id"])
    done = stack.run("generate", project_id, "--json", "--timeout", "60")
    assert done.returncode == 0, done.stderr

    project = stack.json("show", project_id)
    cast = {c["name"]: c for c in project["cast"]}
    assert set(cast) == {"Lin", "Tom"}
    assert cast["Tom"]["description"] == "man" and cast["Lin"]["source"] == "planner"
    shots = project["shots"]
    for name in ("Lin", "Tom"):
        assert cast[name]["shots"] == [s["number"] for s in shots if name in s["characters"]]
        assert len(cast[name]["shots"]) >= 2
    assert any(s["characters"] == ["Lin", "Tom"] for s in shots)
    descriptions_in_prompts(project)
    # The artist's fields: who speaks, what we see, how long, at the project's aspect.
    spoken = [line for s in shots for line in s["dialogue"]]
    assert {"speaker": "Lin", "line": "You are early today"} in spoken
    assert all(s["duration"] > 0 and s["seed"] is not None for s in shots)
    assert shots[0]["action"].startswith("Lin unlocked the old bookshop")
    for shot in shots:
        assert png(shot["image_url"]).size == (192, 344) == (shot["width"], shot["height"])
    script = json.loads(urllib.request.urlopen(project["script_url"], timeout=10).read())
    assert [c["name"] for c in script["characters"]] == ["Lin", "Tom"]
    # A script link about to expire is renewed when the project is shown.
    store = stack.store()
    store.set_script_link(project["task"]["id"], "https://expired.invalid/",
                          "2000-01-01T00:00:00+00:00")
    store.close()
    renewed = stack.json("show", project_id)
    assert renewed["script_url_expires_at"] > datetime.now(timezone.utc).isoformat()
    assert json.loads(urllib.request.urlopen(renewed["script_url"], timeout=10).read()) == script
    assert [s["characters"] for s in script["shots"]] == [s["characters"] for s in shots]

    # The writer describes Lin; a regen-shot (no --seed: a new one, recorded) uses the new
    # words at the project's aspect.
    edited = stack.json("cast", project_id, "--set", "lin=young woman, red wool scarf")
    assert [(c["name"], c["description"], c["source"]) for c in edited][0] == (
        "Lin", "young woman, red wool scarf", "user")
    target = next(s for s in shots if s["characters"] == ["Lin"])
    regen = stack.json("regen-shot", str(target["id"]), "--timeout", "60")
    (after,) = regen["shots"]
    assert "Lin (young woman, red wool scarf)" in after["image_prompt"]
    assert after["seed"] != target["seed"]
    assert stack.json("status", regen["id"])["shots"][0]["seed"] == after["seed"]
    assert png(after["image_url"]).size == (192, 344)
    descriptions_in_prompts(stack.json("show", project_id) | {"shots": [after]})

    human = stack.run("show", project_id)
    assert "Cast: Lin (young woman, red wool scarf); Tom (man)" in human.stdout
    assert "Dialogue: Lin: You are early today" in human.stdout
    assert f"Prompt:   {target['prompt']}" in human.stdout


def test_the_diffusers_backend_fits_the_cast_with_its_own_tokenizer_and_repeats_a_seed(
    make_stack, diffusers_daemon
):
    stack = make_stack(diffusers_daemon, name="diffusers", images={"width": 64, "height": 64})
    stack.start_worker()
    project_id = str(new_project(stack, "--aspect", "2.39:1")["id"])
    done = stack.run("generate", project_id, "--json", "--timeout", "90", timeout=120)
    assert done.returncode == 0, done.stderr
    project = stack.json("show", project_id)
    descriptions_in_prompts(project)
    shot = project["shots"][2]
    assert png(shot["image_url"]).size == (152, 64)
    # The animatic of diffusers frames, at the project's 2.39:1.
    film = stack.json("export", project_id, "--format", "mp4")
    with av.open(film["path"]) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (1148, 480)
        total = sum(s["duration"] for s in project["shots"])
        assert abs(float(video.duration * video.time_base) - total) <= 1 / 24

    # Same shot, prompt, seed, size and model: the same image. Each regen-shot renders alone;
    # the storyboard's shots were rendered in batches, which are not bitwise equal to single
    # calls (float noise), so the regen-shots are compared with each other.
    redone = [stack.json("regen-shot", str(shot["id"]), "--seed", str(shot["seed"]),
                         "--timeout", "60")["shots"][0] for _ in range(2)]
    assert redone[0]["image_key"] != redone[1]["image_key"] != shot["image_key"]
    assert png(redone[0]["image_url"]).tobytes() == png(redone[1]["image_url"]).tobytes()
