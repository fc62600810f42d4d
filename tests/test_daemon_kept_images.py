"""A render whose upload failed is kept by the daemon, so that the retry only uploads it
(issue 14: a 20 s bucket outage made 100 shots cost 268 renders)."""

from __future__ import annotations

from fixtures_bucket import render_through_outage
from PIL import Image

from gpu_daemon.uploader import KeptImages


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_kept_images_are_bounded_by_bytes_and_age_and_taken_once():
    clock = Clock()
    image = Image.new("RGB", (10, 10))  # 300 bytes of pixels
    kept = KeptImages(max_bytes=700, max_age_s=60, clock=clock)
    kept.put("a", "image a", image)
    clock.now = 1
    kept.put("b", "image b", image)
    kept.put("c", "image c", image)  # 900 bytes: the oldest goes
    assert (len(kept), kept.bytes) == (2, 600)
    assert kept.take("a") is None
    assert kept.take("b") == "image b"
    assert kept.take("b") is None  # taken: a retry whose upload fails puts it back
    clock.now = 62  # "c" is older than 60 s
    assert kept.take("c") is None
    assert (len(kept), kept.bytes, kept.reused) == (0, 0, 1)
    off = KeptImages(max_bytes=0, max_age_s=60, clock=clock)
    off.put("a", "image a", image)
    assert len(off) == 0


def test_a_bucket_outage_mid_task_renders_each_shot_once_and_the_retries_only_upload(
    tmp_path, redis_url, tiny_model_dir
):
    run = render_through_outage(tmp_path, redis_url, tiny_model_dir, shots=8, outage_s=4)
    assert run.status == "succeeded"
    assert run.renders == run.shots  # /v1/status: no image rendered twice
    assert run.reused >= run.shots  # every shot's first upload failed; its retry reused it
    print(f"bucket outage of {run.outage_s:g} s: {run.renders} renders for {run.shots} shots, "
          f"{run.reused} retries only uploaded, done {run.seconds:.1f} s after it began")
