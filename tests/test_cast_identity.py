"""A character's identity beyond words, the host's half, as a user runs it (`storyboard`
subprocesses against a real Redis, SeaweedFS and the sketch GPU daemon): a reference image
uploaded (`cast --set ... --image`, checked: a whole PNG or JPEG within bounds) or a portrait
rendered from the description (`cast --portraits`), both kept in the bucket under the
character; a LoRA and trigger word per character; a consistency mode per project (`new
--consistency`). Every render request then carries the project's mode and, for each character
a shot shows, its reference, LoRA and trigger."""

from __future__ import annotations

import base64
import io
import json
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from fixtures_queue import QueueStack
from PIL import Image
from test_remote_e2e import laptop, remote_env

from storyboard_cli.service import LocalService
from storyboard_cli.tasks.jobs import render_request
from storyboard_contract.keys import character_slug, identity_key
from storyboard_contract.s3 import client_from_config
from storyboard_contract.wire import MAX_REFERENCE_BYTES, LoraRef

STORY = "Lin lit the lamp. Tom climbed the stairs. Lin smiled at Tom."


def png_bytes(size: tuple[int, int] = (24, 32), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(out, "JPEG")
    return out.getvalue()


def new_project(stack: QueueStack, *options: str) -> str:
    (stack.root / "story.txt").write_text(STORY + "\n", encoding="utf-8")
    return str(stack.json("new", "story.txt", *options)["id"])


def bucket_object(stack: QueueStack, key: str) -> bytes:
    config = stack.config()
    return client_from_config(config.s3).get_object(Bucket=config.s3.bucket,
                                                    Key=key)["Body"].read()


def test_an_uploaded_reference_image_is_kept_in_the_bucket_with_the_character(stack):
    project = new_project(stack)
    (stack.root / "lin.png").write_bytes(png_bytes())
    (stack.root / "tom.jpg").write_bytes(jpeg_bytes())
    (lin,) = [c for c in stack.json("cast", project, "--set", "Lin=young woman, red scarf",
                                    "--image", "lin.png") if c["name"] == "Lin"]
    key = lin["reference_key"]
    assert key.startswith(f"projects/{project}/cast/{character_slug('Lin')}/")
    assert key.endswith(".png") and bucket_object(stack, key) == png_bytes()
    tom = stack.json("cast", project, "--set", "Tom=old man", "--image", "tom.jpg")[-1]
    assert tom["reference_key"].endswith(".jpg")
    assert bucket_object(stack, tom["reference_key"]) == jpeg_bytes()
    # A new image is a new object: a board kept from before still finds the old one.
    (stack.root / "lin2.png").write_bytes(png_bytes(color="green"))
    again = stack.json("cast", project, "--set", "Lin=young woman, red scarf", "--image",
                       "lin2.png")[0]
    assert again["reference_key"] != key and bucket_object(stack, key) == png_bytes()


def _png_with_size(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("content", "message"), [
    (b"Lin, in words", "is not a whole PNG or JPEG image"),
    (png_bytes()[:-20], "is not a whole PNG or JPEG image"),  # cut short
    (jpeg_bytes()[:-10], "is not a whole PNG or JPEG image"),
    (_png_with_size(5000, 10), "of at most 4096x4096 pixels"),
    (b"\x89PNG" + b"\0" * MAX_REFERENCE_BYTES, "a reference image is at most 8 MiB"),
])
def test_a_bad_reference_image_changes_nothing(stack, content, message):
    project = new_project(stack)
    stack.json("cast", project, "--set", "Lin=young woman")
    (stack.root / "bad.png").write_bytes(content)
    refused = stack.run("cast", project, "--set", "Lin=older woman", "--image", "bad.png")
    assert refused.returncode == 2
    assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [(c["description"], c["reference_key"]) for c in stack.json("cast", project)] == [
        ("young woman", None)]


def test_identity_options_go_with_one_character(stack):
    project = new_project(stack)
    (stack.root / "lin.png").write_bytes(png_bytes())
    for args, message in [
        (("--image", "lin.png"), '--image, --lora and --trigger go with one --set'),
        (("--set", "A=girl", "--set", "B=boy", "--trigger", "x"), "go with one --set"),
        (("--set", "Lin=woman", "--lora", "lin.png"), "LoRAs are .safetensors files"),
        (("--set", "Lin=woman", "--lora", "../lin.safetensors"), "as a relative path"),
        (("--set", "Lin=woman", "--trigger", "a\x1bb"), "--trigger"),
        (("--portraits", "--set", "Lin=woman"), "--portraits renders the cast as it is"),
        (("--portrait", "Nobody"), "has no character 'Nobody'"),
    ]:
        refused = stack.run("cast", project, *args)
        assert refused.returncode == 2, args
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert stack.json("cast", project) == []


def test_portraits_are_rendered_from_the_descriptions_and_kept_as_references(stack):
    project = new_project(stack, "--style", "noir")
    stack.json("cast", project, "--set", "Lin=young woman, red scarf")
    stack.json("cast", project, "--set", "Tom=old man, grey beard")
    cast = stack.json("cast", project, "--portraits")
    keys = {c["name"]: c["reference_key"] for c in cast}
    square = stack.config().images.frame_size("1:1", None)  # the project's frame is 16:9
    for name, key in keys.items():
        assert key.startswith(f"projects/{project}/cast/{character_slug(name)}/")
        image = Image.open(io.BytesIO(bucket_object(stack, key)))
        assert (image.format, image.size) == ("PNG", square)
    # Redone for one: a new portrait for Lin only; Tom keeps his.
    redone = {c["name"]: c["reference_key"] for c in stack.json("cast", project, "--portrait",
                                                                "lin")}
    assert redone["Lin"] != keys["Lin"] and redone["Tom"] == keys["Tom"]
    # The renders' own objects (shot 0 of no storyboard) are not left behind.
    config = stack.config()
    client = client_from_config(config.s3)
    assert "Contents" not in client.list_objects_v2(
        Bucket=config.s3.bucket, Prefix=f"projects/{project}/shots/0/")
    # Lin's identity features, kept where the daemon keeps them in the "attention" mode.
    features = identity_key(config.s3.prefix, int(project), "Lin", "ab12")
    client.put_object(Bucket=config.s3.bucket, Key=features, Body=b"features")
    # `rm` deletes the portraits and the features with the project (the bucket is the
    # session's: other tests' projects 1 left objects under the same prefix, before this one
    # was made).
    assert stack.json("rm", project, "--yes")["objects"]["deleted"] == 4
    for key in [*keys.values(), redone["Lin"], features]:
        with pytest.raises(client.exceptions.NoSuchKey):
            client.get_object(Bucket=config.s3.bucket, Key=key)


def test_every_render_request_carries_the_mode_and_the_shown_characters_identity(stack):
    stack.start_worker()
    project = new_project(stack, "--consistency", "reference")
    assert stack.json("show", project)["settings"]["consistency"] == "reference"
    (stack.root / "lin.png").write_bytes(png_bytes())
    stack.json("cast", project, "--set", "Lin=young woman", "--image", "lin.png", "--lora",
               "people/lin.safetensors:0.7", "--trigger", "linwoman")
    stack.json("cast", project, "--set", "Tom=old man")
    assert stack.json("generate", project, "--no-images", "--timeout", "60")[
        "status"] == "succeeded"
    store, config = stack.store(), stack.config()
    try:
        task = store.storyboards(int(project))[0]
        shots = store.task_shot_rows(task)
        lin = store.cast(int(project))[0]
        requests = [render_request(store, config, task, s["id"], 1) for s in shots]
    finally:
        store.close()
    assert all(r.consistency == "reference" for r in requests)
    shown = {c.name: c for r in requests for c in r.characters}
    assert (shown["Lin"].reference_key, shown["Lin"].lora, shown["Lin"].trigger) == (
        lin["reference_key"], LoraRef(name="people/lin.safetensors", scale=0.7), "linwoman")
    assert (shown["Tom"].reference_key, shown["Tom"].lora, shown["Tom"].trigger) == (
        None, None, None)
    # The mode is a render setting: changed, reset, refused when unknown.
    assert stack.json("settings", project, "--consistency", "lora")["consistency"] == "lora"
    assert stack.json("settings", project, "--reset", "consistency")["consistency"] is None
    refused = stack.run("new", "story.txt", "--consistency", "faces")
    assert refused.returncode == 2 and "unknown consistency 'faces'; use one of text" in (
        refused.stderr)
    # A LoRA and trigger word are taken away with "".
    stack.json("cast", project, "--set", "Lin=young woman", "--lora", "", "--trigger", "")
    lin = stack.json("cast", project)[0]
    assert (lin["lora"], lin["trigger"], lin["reference_key"]) == (None, None,
                                                                   shown["Lin"].reference_key)


def test_the_boards_and_exports_show_the_cast_with_its_reference_images(stack):
    stack.start_worker()
    project = new_project(stack)
    assert stack.json("generate", project, "--timeout", "90")["status"] == "succeeded"
    (stack.root / "lin.png").write_bytes(png_bytes())
    (stack.root / "tom.jpg").write_bytes(jpeg_bytes())
    stack.json("cast", project, "--set", "Lin=young woman", "--image", "lin.png")
    stack.json("cast", project, "--set", "Tom=old man", "--image", "tom.jpg")
    stack.json("cast", project, "--set", "Ann=a girl who is never drawn")
    keys = {c["name"]: c["reference_key"] for c in stack.json("cast", project)}

    # The HTML export embeds them, each with its name; a character without one has no image.
    html = (stack.root / stack.json("export", project, "--format", "html")["path"]).read_text()
    strip = html[html.index('<div class="cast-strip">'):html.index("</header>")]
    assert strip.count("<figure") == 2 and "Ann" not in strip
    assert f'src="data:image/png;base64,{base64.b64encode(png_bytes()).decode()}"' in strip
    assert 'src="data:image/jpeg;base64,' in strip and "<figcaption>Tom</figcaption>" in strip

    # The zip and the Storyboarder folder hold the images, named by the cast's order.
    with zipfile.ZipFile(stack.json("export", project, "--format", "zip")["path"]) as archive:
        assert archive.read("cast-01-Lin.png") == png_bytes()
        assert archive.read("cast-02-Tom.jpg") == jpeg_bytes()
        listing = json.loads(archive.read("shotlist.json"))
    assert [(c["name"], c["file"]) for c in listing["cast"]] == [
        ("Lin", "cast-01-Lin.png"), ("Tom", "cast-02-Tom.jpg"), ("Ann", None)]
    folder = Path(stack.json("export", project, "--format", "storyboarder")["path"])
    assert (folder / "cast-01-Lin.png").read_bytes() == png_bytes()

    # The PDF ends with a cast page: the images with the names and descriptions.
    pdf = stack.json("export", project, "--format", "pdf")["path"]
    pages = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    assert "Cast" in pages[-2] and "Lin" in pages[-2] and "old man" in pages[-2]
    images = subprocess.run(["pdfimages", "-list", pdf], capture_output=True, text=True,
                            check=True).stdout
    assert images.count(f"{len(pages) - 1:>4} ") >= 2  # the cast page's two images

    # The web page links them through serve's image route, which streams them.
    config = stack.config()
    service = LocalService(config)
    try:
        page = "".join(service.board_page(project, lambda shot: "/api/images/"
                                          + shot["image_key"]))
        assert f'src="/api/images/{keys["Lin"]}"' in page
        frame = service.frame(keys["Tom"])
        assert b"".join(frame.chunks) == jpeg_bytes()
        frame.close()
    finally:
        service.close()


def test_the_remote_cli_sends_the_cast_and_its_images_through_serve(served, tmp_path):
    """`--server`: the same commands over the HTTP API, the image travelling in the body."""
    run = laptop(tmp_path / "laptop", remote_env(served))
    (tmp_path / "laptop" / "lin.png").write_bytes(png_bytes())
    (tmp_path / "laptop" / "story.txt").write_text(
        "Mei rowed across. Mei waved. 阿梅笑了。阿梅把船靠了岸。", encoding="utf-8")
    project = json.loads(run("new", "story.txt", "--json", "--consistency", "lora").stdout)["id"]

    def cast(*args: str) -> list[dict]:
        done = run("cast", str(project), *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    (mei,) = cast("--set", "Mei=young boatwoman", "--alias", "Mei=阿梅", "--image", "lin.png",
                  "--lora", "mei.safetensors:0.6", "--trigger", "meiwoman")
    assert (mei["aliases"], mei["lora"], mei["trigger"]) == (
        ["阿梅"], {"name": "mei.safetensors", "scale": 0.6}, "meiwoman")
    assert bucket_object(served.stack, mei["reference_key"]) == png_bytes()
    (portrayed,) = cast("--portraits")
    assert portrayed["reference_key"] != mei["reference_key"]
    refused = run("cast", str(project), "--set", "Mei=girl", "--image", "story.txt")
    assert refused.returncode == 2 and "is not a whole PNG or JPEG" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
