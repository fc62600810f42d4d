"""The web board's frames through `storyboard serve`: streamed from the bucket by the keys the
store recorded, authorised like the page, cached by the browser; so one port forwarded to
serve shows the whole board. With [s3] public_endpoint, the board links the bucket directly
instead, under the name viewers reach it by."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest
from fixtures_serve import log_in, start_serve

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rendered(served):
    """A project of the session's server with every shot rendered: its project object."""
    with served.client() as api:
        project = api.post("/api/projects", json={
            "title": "frames", "story_text": "Lin lights the lamp. Tom climbs the stairs."}
        ).json()
        task = api.post(f"/api/projects/{project['id']}/generate-storyboard").json()
        assert served.wait_task(api, task["task_id"])["status"] == "succeeded"
        return api.get(f"/api/projects/{project['id']}").json()


def board_frames(board_html: str) -> list[str]:
    return [unescape(src) for src in re.findall(r'<img src="([^"]+)"', board_html)]


def test_the_board_links_its_frames_through_serve_and_they_are_the_buckets_images(
    served, rendered, s3_server,
):
    with served.browser() as browser:
        log_in(browser, served.token)
        frames = board_frames(browser.get(f"/api/projects/{rendered['id']}/board").text)
        assert len(frames) == len(rendered["shots"]) >= 2
        bucket = s3_server.client()
        for src, shot in zip(frames, rendered["shots"], strict=True):
            assert src.startswith("/api/images/")
            image = browser.get(src)
            assert image.status_code == 200, image.text
            stored = bucket.get_object(Bucket=s3_server.bucket, Key=shot["image_key"])
            assert image.content == stored["Body"].read()
            assert image.content.startswith(PNG)
            assert image.headers["content-type"] == "image/png"
            assert image.headers["content-length"] == str(len(image.content))
            # A key names one render: the browser keeps it, and only this browser.
            assert image.headers["cache-control"] == "private, max-age=31536000, immutable"


def test_a_frame_is_authorised_like_the_page_and_only_recorded_keys_are_read(
    served, rendered, s3_server,
):
    shot = rendered["shots"][0]
    path = "/api/images/" + shot["image_key"]
    with httpx.Client(base_url=served.url, timeout=30) as stranger:
        refused = stranger.get(path)
        assert refused.status_code == 401 and not refused.content.startswith(PNG)
    with served.client() as api:
        assert api.get(path).content.startswith(PNG)  # the bearer token works too
        # The bucket's other objects are not frames: a script, a made-up key, a traversal.
        for key in (rendered["script_key"], shot["image_key"] + ".png",
                    shot["image_key"].replace(".png", "/../x.png"), "projects/999/x.png"):
            answer = api.get("/api/images/" + key)
            assert answer.status_code == 404, key
            assert "no shot of this store" in answer.json()["error"]
        # A recorded frame gone from the bucket says so.
        s3_server.client().delete_object(Bucket=s3_server.bucket,
                                         Key=rendered["shots"][1]["image_key"])
        gone = api.get("/api/images/" + rendered["shots"][1]["image_key"])
        assert gone.status_code == 404 and "gone from the bucket" in gone.json()["error"]


def test_with_a_public_endpoint_the_board_links_the_bucket_under_that_name(
    served, rendered, s3_server,
):
    # Another name of the same bucket: what viewers would reach it by.
    public = s3_server.endpoint.replace("127.0.0.1", "localhost")
    proc, url = start_serve(served.stack, served.token,
                            env={"STORYBOARD_S3_PUBLIC_ENDPOINT": public})
    try:
        with httpx.Client(base_url=url, timeout=30, headers=served.headers) as api:
            frames = board_frames(api.get(f"/api/projects/{rendered['id']}/board").text)
    finally:
        proc.stop()
    assert frames and all(urlsplit(src).netloc == urlsplit(public).netloc for src in frames)
    assert "X-Amz-Signature=" in frames[0]
    assert httpx.get(frames[0], timeout=10).content.startswith(PNG)
