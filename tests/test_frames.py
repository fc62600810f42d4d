"""Frame aspects and sizes: Storyboarder's aspects at a pixel budget, in model-friendly sides."""

from __future__ import annotations

import pytest

from storyboard_contract.config import ImagesConfig, load_config
from storyboard_contract.frames import ASPECTS, aspect_ratio, frame_size, normalise_aspect


@pytest.mark.parametrize("aspect", ASPECTS)
def test_every_aspect_keeps_its_shape_and_the_pixel_budget(aspect: str) -> None:
    width, height = frame_size(aspect, 512 * 512)
    assert width % 8 == 0 and height % 8 == 0
    assert abs(width / height / aspect_ratio(aspect) - 1) < 0.03
    assert abs(width * height / (512 * 512) - 1) < 0.03


def test_the_default_budget_gives_the_sizes_the_readme_lists() -> None:
    images = ImagesConfig()
    assert images.aspect == "16:9"
    assert {a: images.frame_size(a) for a in ASPECTS} == {
        "2.39:1": (792, 328), "2:1": (728, 360), "1.85:1": (696, 376), "16:9": (680, 384),
        "4:3": (592, 440), "1:1": (512, 512), "9:16": (384, 680),
    }


def test_sides_stay_within_what_every_renderer_accepts() -> None:
    # A tiny budget: the short side is 64, the frame scaled up rather than squashed.
    assert frame_size("16:9", 64 * 64) == (112, 64)
    assert frame_size("9:16", 64 * 64) == (64, 112)
    # A huge one: the long side is at most 2048.
    assert frame_size("2.39:1", 4096 * 4096) == (2048, 856)
    # Pipelines that want multiples of 64.
    assert frame_size("16:9", 1024 * 1024, multiple=64) == (1344, 768)


@pytest.mark.parametrize(("written", "name"), [
    ("16:9", "16:9"), ("16x9", "16:9"), ("16/9", "16:9"), (" 2.39 ", "2.39:1"), ("2", "2:1"),
])
def test_aspects_can_be_written_the_usual_ways(written: str, name: str) -> None:
    assert normalise_aspect(written) == name


def test_an_unknown_aspect_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown aspect '3:2'; use one of 2\.39:1, 2:1"):
        normalise_aspect("3:2")


def test_the_configured_aspect_and_budget_are_read_and_normalised(tmp_path) -> None:
    path = tmp_path / "storyboard.toml"
    path.write_text('[images]\naspect = "9x16"\nwidth = 1024\nheight = 1024\n'
                    "size_multiple = 64\n", encoding="utf-8")
    images = load_config(path, environ={}).images
    assert images.aspect == "9:16"
    assert images.frame_size(images.aspect) == (768, 1344)
